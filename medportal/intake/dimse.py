"""DICOM C-STORE SCP: what a modality or PACS sends over DIMSE enters like an upload.

Each received instance is re-encoded as a Part-10 file (the peer's data set bytes behind a
file meta header) and goes through ``studies_receive`` with source "dimse": the same
validation, storage, rows and audit as an upload. The peer gets status 0x0000 when the
instance is stored (or was already), else a failure status with the reason as ErrorComment.

Who stores? A DIMSE peer has no MedPortal login, so every C-STORE acts as the service
user "dimse" (technologist group: it may upload and nothing else; it has no password and
cannot log in). The audit trail names it, and the calling AE title is kept as each
instance's original name.

The AI draft of a study that arrives by DIMSE is requested once the association that
brought it ends, so it is drafted from the whole study rather than its first instance.
"""

from __future__ import annotations

import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.db import DatabaseError, connection
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.uid import UID, AllTransferSyntaxes
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from medportal.access.roles import Role
from medportal.imaging.ingest import IncomingFile, IngestError
from medportal.intake.receive import studies_receive
from medportal.reporting.lifecycle import ReportError
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.services.drafts import study_open_report

logger = logging.getLogger(__name__)

SERVICE_USERNAME = "dimse"
# C-STORE statuses (PS3.4 B.2.3).
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
# Threads that do the database work (see StoreReceiver).
INGEST_THREADS = 4


def dimse_service_user() -> AbstractBaseUser:
    """The user every DIMSE store acts as: "dimse", a technologist without a password."""
    user, created = get_user_model().objects.get_or_create(username=SERVICE_USERNAME)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get_or_create(name=Role.TECHNOLOGIST.value)[0])
    return user


def decodable_transfer_syntaxes() -> list[UID]:
    """Every transfer syntax whose pixels this installation decodes: uncompressed, deflated,
    JPEG (baseline, extended, lossless), JPEG-LS, JPEG 2000, HTJ2K and RLE with pylibjpeg.
    Accepting one we cannot decode would only turn a peer's re-encode into a refusal."""
    found = []
    for uid in AllTransferSyntaxes:
        try:
            if get_decoder(uid).is_available:
                found.append(uid)
        except NotImplementedError:  # video, audio and referenced syntaxes have no decoder
            continue
    return found


def _status(code: int, comment: str = "") -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = comment.replace("\\", "/")[:64]  # LO: 64 characters, no backslash
    return status


@dataclass
class _Association:
    """What the SCP keeps while an association lasts (its C-STOREs arrive one at a time)."""

    user: Any = None  # the service user, looked up at the first store
    report_ids: set[int] = field(default_factory=set)  # reports of the studies it sent


class StoreReceiver:
    """The SCP's event handlers.

    pynetdicom runs each association in a thread of its own, and Django opens a database
    connection per thread that nothing would close when that thread ends. So the database
    work runs in a small pool of long-lived threads, each keeping its one connection.
    """

    def __init__(self, *, threads: int = INGEST_THREADS):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dimse-ingest")
        self._lock = threading.Lock()
        self._associations: dict[int, _Association] = {}  # by id() of pynetdicom's Association

    def handlers(self) -> list[tuple[Any, Any]]:
        return [
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_CONN_CLOSE, self.on_connection_closed),
        ]

    def on_echo(self, event: evt.Event) -> int:
        return SUCCESS

    def on_store(self, event: evt.Event) -> Dataset:
        with self._lock:
            association = self._associations.setdefault(id(event.assoc), _Association())
        name = f"C-STORE from {event.assoc.requestor.ae_title}: {event.request.AffectedSOPInstanceUID}"
        code, comment = self._pool.submit(self._ingest, event.encoded_dataset(), name, association).result()
        if code != SUCCESS:
            logger.warning("Refused %s: %s", name, comment)
        return _status(code, comment)

    def on_connection_closed(self, event: evt.Event) -> None:
        with self._lock:
            association = self._associations.pop(id(event.assoc), None)
        if association and association.report_ids and settings.MEDPORTAL_AUTO_DRAFT:
            self._pool.submit(self._draft, association.report_ids)

    def _ingest(self, data: bytes, name: str, association: _Association) -> tuple[int, str]:
        # A file over the size limit still goes through ingest (which audits the refusal).
        refusal = OUT_OF_RESOURCES if len(data) > settings.MAX_UPLOAD_FILE_BYTES else CANNOT_UNDERSTAND
        try:
            if association.user is None:
                association.user = dimse_service_user()
            result, reports = studies_receive(
                files=[IncomingFile(name, data)],
                uploader=association.user,
                auto_draft=False,  # requested when the association ends
                source="dimse",
            )
        except IngestError as exc:
            return refusal, str(exc)
        except DatabaseError:
            logger.exception("Storing %s failed", name)
            connection.close()  # a broken connection is opened afresh by the next store
            return OUT_OF_RESOURCES, "MedPortal could not store it now; send it again"
        if result.rejected:
            return refusal, result.rejected[0].reason
        association.report_ids.update(report.pk for report in reports)
        return SUCCESS, ""

    def _draft(self, report_ids: set[int]) -> None:
        try:
            user = dimse_service_user()
            for report in Report.objects.filter(pk__in=report_ids, status=ReportStatus.RECEIVED):
                try:
                    study_open_report(study=report.study, user=user, auto_draft=True)
                except ReportError:  # someone requested it in the meantime
                    continue
        except Exception:  # in a pool thread nobody would see it otherwise
            logger.exception("Requesting drafts for reports %s failed", sorted(report_ids))
            connection.close()


class _QuickAckSocket(socket.socket):
    """Acknowledges every read at once (Linux TCP_QUICKACK, which the kernel clears again by
    itself, hence after each read). A peer with Nagle's algorithm on (dcmtk's storescu as
    packaged here, and modalities built on it) holds back the rest of each C-STORE until its
    first segment is acknowledged, and Linux delays that ACK up to 40 ms: measured here,
    ~21 instances/s instead of ~235 on a bare SCP."""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        self.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data


class _LowLatencyServer(ThreadedAssociationServer):
    """Accepted sockets send at once (TCP_NODELAY: our C-STORE responses never wait for an
    ACK) and acknowledge at once (TCP_QUICKACK, where the platform has it)."""

    def get_request(self) -> tuple[socket.socket, Any]:
        client, address = super().get_request()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if hasattr(socket, "TCP_QUICKACK") and self.ssl_context is None:
            client = _QuickAckSocket(client.family, client.type, client.proto, fileno=client.detach())
        return client, address


def dimse_server_start(
    *, host: str, port: int, ae_title: str, low_latency: bool = True
) -> ThreadedAssociationServer:
    """Start the C-STORE SCP in background threads; stop it with ``server.shutdown()``.

    Peers must call it by ``ae_title``; it answers C-ECHO and accepts every storage SOP
    class in every transfer syntax this installation decodes. ``low_latency=False`` leaves
    the sockets as the OS makes them (to measure the difference).
    """
    ae = AE(ae_title=ae_title)
    ae.require_called_aet = True
    transfer_syntaxes = decodable_transfer_syntaxes()
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, transfer_syntaxes)
    ae.add_supported_context(Verification)
    receiver = StoreReceiver()
    server = ae.make_server(
        (host, port),
        evt_handlers=receiver.handlers(),
        server_class=_LowLatencyServer if low_latency else ThreadedAssociationServer,
    )
    ae._servers.append(server)  # as AE.start_server does; server.shutdown() removes it
    threading.Thread(target=server.serve_forever, name="dimse-acceptor", daemon=True).start()
    return server
