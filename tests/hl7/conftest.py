"""A real MLLP listener (a TCP server thread answering like an EHR) and a real interfaces worker."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from pydicom.uid import generate_uid

from medportal.imaging.models import Patient, Study
from medportal.reporting.models import Report
from medportal.reporting.services import drafts, editing
from tests.conftest import PASSWORD
from tests.e2e.conftest import ROOT, database_url, free_port, start_celery_worker, stop

VT, FS_CR = b"\x0b", b"\x1c\r"


class MllpListener:
    """An EHR's HL7 receiver on 127.0.0.1:``port``. ``mode`` says how it answers each message:
    ``AA``, ``AE`` (with ``error``), ``close`` (hangs up without an ACK) or ``silent`` (never answers).
    ``received`` holds every message that arrived, decoded, in order."""

    def __init__(self, port: int | None = None, mode: str = "AA", error: str = "Unknown patient"):
        self.port = port or free_port()
        self.mode = mode
        self.error = error
        self.received: list[str] = []
        self._server: socket.socket | None = None
        self._stopping = threading.Event()
        self._changed = threading.Condition()

    def start(self) -> MllpListener:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen()
        server.settimeout(0.2)
        self._server = server
        self._stopping.clear()
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.close()
            self._server = None

    def _serve(self) -> None:
        server = self._server
        while not self._stopping.is_set():
            try:
                connection, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(30)
            data = b""
            while FS_CR not in data:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                data += chunk
            message = data[data.index(VT) + 1 : data.index(FS_CR)].decode("utf-8")
            with self._changed:
                self.received.append(message)
                self._changed.notify_all()
            if self.mode == "close":
                return
            if self.mode == "silent":
                self._stopping.wait(60)
                return
            connection.sendall(VT + ack(message, self.mode, self.error).encode() + FS_CR)

    def wait_for(self, count: int, timeout: float = 30) -> list[str]:
        """The first ``count`` messages, once they have arrived."""
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.received) >= count, timeout), (
                f"{len(self.received)} of {count} HL7 messages arrived"
            )
            return list(self.received)


def ack(message: str, code: str, error: str) -> str:
    """An ACK as an EHR writes it: MSA with the message's control id, ERR with the reason."""
    fields = message.split("\r")[0].split("|")
    control_id = fields[9]
    segments = [
        f"MSH|^~\\&|EHR|HOSPITAL|{fields[2]}|{fields[3]}|{timezone.now():%Y%m%d%H%M%S}||ACK^R01^ACK|A{control_id[:19]}|P|2.5.1",
        f"MSA|{code}|{control_id}",
    ]
    if code != "AA":
        segments.append(f"ERR|||204^Unknown key identifier^HL70357|E||||{error}")
    return "\r".join(segments) + "\r"


def segments(message: str, name: str) -> list[list[str]]:
    return [s.split("|") for s in message.split("\r") if s.startswith(name + "|")]


@pytest.fixture
def interfaces(transactional_db, settings, tmp_path):
    """The interfaces worker (a real Celery process, its own fresh queue, no model) pointed at
    port ``interfaces.port`` on 127.0.0.1, with short retries; this process's settings agree.
    Start it with ``interfaces.start()``, after arranging what listens on that port."""
    running = Interfaces(settings, tmp_path)
    yield running
    running.close()


class Interfaces:
    def __init__(self, django_settings, tmp_path):
        self.queue = f"hl7-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.settings = django_settings
        self.env = dict(
            os.environ,
            DATABASE_URL=database_url(),
            REDIS_URL=settings.REDIS_URL,
            MEDPORTAL_MODEL="tiny",
            MEDPORTAL_DATA_DIR=str(settings.DATA_DIR),
            MEDPORTAL_IMAGE_STORE=str(tmp_path / "images"),
            PYTHONPATH=str(ROOT),
        )
        self.configure(
            MEDPORTAL_INTERFACES_QUEUE=self.queue,
            MEDPORTAL_HL7_HOST="127.0.0.1",
            MEDPORTAL_HL7_PORT=self.port,
            MEDPORTAL_HL7_ACK_TIMEOUT_SECONDS=2,
            MEDPORTAL_HL7_MAX_ATTEMPTS=3,
            MEDPORTAL_HL7_RETRY_SECONDS=1,
            MEDPORTAL_HL7_RETRY_MAX_SECONDS=2,
        )
        self.worker = None
        self.listeners: list[MllpListener] = []

    def configure(self, **values) -> None:
        """The same setting here and, through its environment, in the worker (before ``start``)."""
        for name, value in values.items():
            setattr(self.settings, name, value)
            self.env[name] = str(value)

    def start(self, *, queues: list[str] | None = None):
        self.worker = start_celery_worker(
            self.env, queues=queues or [self.queue], pool="threads", concurrency=2
        )
        return self.worker

    def listener(self, mode: str = "AA", error: str = "Unknown patient") -> MllpListener:
        running = MllpListener(port=self.port, mode=mode, error=error).start()
        self.listeners.append(running)
        return running

    def close(self) -> None:
        for running in self.listeners:
            running.stop()
        if self.worker is not None:
            stop(self.worker)
        redis.Redis.from_url(settings.REDIS_URL).delete(self.queue)


def wait_until(condition, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def new_study(
    *, name: str = "Doe^Jane", mrn: str = "MRN-7", accession: str = "ACC-7", description: str = "CT CHEST"
) -> Study:
    patient, _ = Patient.objects.get_or_create(
        patient_id=mrn, defaults={"name": name, "birth_date": "19700131", "sex": "F"}
    )
    return Study.objects.create(
        study_uid=generate_uid(),
        patient=patient,
        accession_number=accession,
        description=description,
        modality="CT",
        indication="Cough for 3 weeks.",
    )


def written_report(user, *, findings: str, impression: str, study: Study | None = None) -> Report:
    """A report the radiologist wrote (saved, in review), ready to sign."""
    report = drafts.report_for_study(study=study or new_study())
    return editing.report_save(
        report=report, user=user, findings=findings, impression=impression, expected_version=report.version
    )


def sign(report: Report, user) -> Report:
    return editing.report_sign(report=report, user=user, password=PASSWORD)
