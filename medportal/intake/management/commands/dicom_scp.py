"""Runs the DICOM C-STORE SCP (DIMSE) until SIGTERM or Ctrl-C."""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from medportal.audit.services import audit_application
from medportal.intake.dimse import dimse_server_start


class Command(BaseCommand):
    help = (
        "Receive studies over DICOM DIMSE: answers C-ECHO and C-STORE, storing every instance "
        "through the same ingest as uploads (as the service user 'dimse')."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
        parser.add_argument("--port", type=int, default=settings.MEDPORTAL_DIMSE_PORT)
        parser.add_argument("--ae-title", default=settings.MEDPORTAL_DIMSE_AE_TITLE)

    def handle(self, *args, host, port, ae_title, verbosity, **options):
        # pynetdicom logs every association and message at INFO: too much for a whole CT study.
        logging.getLogger("pynetdicom").setLevel(logging.DEBUG if verbosity > 1 else logging.WARNING)
        server = dimse_server_start(host=host, port=port, ae_title=ae_title)
        self.stdout.write(f"DICOM C-STORE SCP {ae_title} listening on {host}:{server.server_address[1]}")
        audit_application(
            description="DICOM C-STORE SCP started", detail={"ae_title": ae_title, "port": port}
        )
        self.stdout.flush()
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        while not stopping.wait(1):
            pass
        server.shutdown()
        audit_application(
            description="DICOM C-STORE SCP stopped", detail={"ae_title": ae_title, "port": port}
        )
