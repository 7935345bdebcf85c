"""DICOM C-STORE SCP: what a modality or PACS sends over DIMSE enters like an upload.

Each received instance (the peer's data set bytes behind a file meta header) is parsed once,
in the association's own thread, and handed parsed to ``study_ingest`` with source "dimse":
the same validation, storage and rows as an upload; a new study gets its report in the same
transaction. An association's series are looked up once (then kept for its later instances).

Auditing is per association and study rather than per instance: the transaction that commits a
study's first instance from an association also writes "Receiving instances" (the study, the
calling AE, an association key), so no instance is ever committed unaudited; when the
association ends, "Instances received" names every SOP Instance UID it stored (and those it
sent again). Refusals are audited each, in their commit, as before.

Writing is grouped. One committer thread writes what every association has received: each
commit takes the instances waiting (at most ``COMMIT_INSTANCES``), and while several
associations are sending it waits up to ``COMMIT_WAIT_MS`` for one instance of each, so that
they share one transaction. A peer sends its next instance only when it has the answer to the
last, so one association's instances are committed one by one, at once; the peer gets its
answer only once its instance is committed (0x0000 when stored or stored already, a failure
status with the reason as ErrorComment when refused, warning 0xB006 when another instance with
this SOP Instance UID is stored already with other content). An association cut off halfway
leaves every acknowledged instance stored and nothing of the one in flight but, at most, an
unreferenced blob.

Who stores? A DIMSE peer has no MedPortal login, so every C-STORE acts as the service
user "dimse" (technologist group: it may upload and nothing else; it has no password and
cannot log in). The audit trail names it, and the calling AE title is kept as each
instance's original name.

The AI draft of a study that arrives by DIMSE is requested once the association that
brought it ends, so it is drafted from the whole study rather than its first instance; a study
that holds no image yet (a dose report sent first) waits for its images.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.db import DatabaseError, connection, transaction
from pydicom._uid_dict import UID_dictionary
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.uid import UID, AllTransferSyntaxes
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import Verification, register_uid
from pynetdicom.transport import ThreadedAssociationServer

from medportal.access.roles import Role
from medportal.audit.models import Action, EventType
from medportal.imaging.auditing import study_audit
from medportal.imaging.ingest import IncomingFile, IngestError, IngestResult, parse_file, study_ingest
from medportal.imaging.models import Series, Study
from medportal.intake.dimse_reactor import PromptRequestHandler, SharedContexts
from medportal.reporting.lifecycle import ReportError
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.services.drafts import report_for_study, study_open_report

logger = logging.getLogger(__name__)

SERVICE_USERNAME = "dimse"
# C-STORE statuses (PS3.4 B.2.3).
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
ELEMENTS_DISCARDED = 0xB006  # a warning: what was sent is not kept (the stored instance is)
# A commit takes at most this many instances; with several associations sending, it waits at
# most this long for one instance of each.
COMMIT_INSTANCES = 64
COMMIT_WAIT_MS = 20
# The largest PDU a peer may send us. pynetdicom's default (16 KiB, as Orthanc's) splits a CT
# slice into several P-DATA PDUs, each read and decoded on its own; a peer such as dcmtk sends
# what we allow (up to its own limit, 128 KiB for dcmtk). A message is held whole in memory
# either way (its size is limited by MAX_UPLOAD_FILE_BYTES).
MAX_PDU_BYTES = 4 * 1024 * 1024


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


def storage_sop_classes() -> list[str]:
    """Every storage SOP class: pynetdicom's current ones and the retired ones modalities still
    send (the retired ultrasound and nuclear medicine image storage above all), from pydicom's
    UID dictionary (1.2.840.10008.5.1.4.1.1.x, "... Storage")."""
    current = [context.abstract_syntax for context in AllStoragePresentationContexts]
    others = []
    for uid, (name, kind, _, _, keyword) in UID_dictionary.items():
        storage = kind == "SOP Class" and "Storage" in name and uid.startswith("1.2.840.10008.5.1.4.1.1.")
        if storage and uid not in current and keyword.isidentifier():
            # pynetdicom hands a C-STORE only to a service class it knows the UID of.
            register_uid(uid, f"Medportal{keyword}", StorageServiceClass)
            others.append(uid)
    return [*current, *others]


def _status(code: int, comment: str = "") -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = comment.replace("\\", "/")[:64]  # LO: 64 characters, no backslash
    return status


@dataclass
class _Receipt:
    """What one association has brought of one study so far (audited when it ends)."""

    study: Study
    stored: list[str] = field(default_factory=list)  # SOP Instance UIDs
    duplicates: list[str] = field(default_factory=list)


@dataclass
class _Association:
    """What the SCP keeps while an association lasts (its C-STOREs arrive one at a time)."""

    calling_ae: str
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # ties its audit events together
    user: Any = None  # the service user, looked up at its first commit
    # Its series by UID, with their studies and patients, so that a series is looked up once
    # per association rather than once per instance; dropped when a commit fails.
    series: dict[str, Series] = field(default_factory=dict)
    receipts: dict[str, _Receipt] = field(default_factory=dict)  # by Study Instance UID

    def audit_detail(self) -> dict[str, str]:
        return {"source": "dimse", "calling_ae": self.calling_ae, "association": self.key}


@dataclass
class _Pending:
    """One received instance on its way to a commit; ``done`` gets its (status, comment)."""

    incoming: IncomingFile
    association: _Association
    study_uid: str
    done: Future = field(default_factory=Future)


class _Committer:
    """The one thread that writes received instances, a group per transaction.

    Django opens a database connection per thread, so one long-lived writer also keeps one
    connection, where pynetdicom's thread per association would leave one behind each.
    """

    def __init__(self, active: Any):
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._active = active  # how many associations are open now
        threading.Thread(target=self._run, name="dimse-commit", daemon=True).start()

    def submit(self, pending: _Pending) -> tuple[int, str]:
        self._queue.put(pending)
        return pending.done.result()

    def _run(self) -> None:
        while True:
            group = [self._queue.get()]
            deadline = time.monotonic() + COMMIT_WAIT_MS / 1000
            while len(group) < min(COMMIT_INSTANCES, max(self._active(), 1)):
                try:
                    group.append(self._queue.get(timeout=max(deadline - time.monotonic(), 0)))
                except queue.Empty:
                    break
            while len(group) < COMMIT_INSTANCES:  # whatever else is waiting already
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit_waves(group)

    def _commit_waves(self, group: list[_Pending]) -> None:
        """Instances of one name (the same instance from two peers) go in separate commits, so
        that each refusal is told to its own sender."""
        while group:
            names: set[str] = set()
            wave, group_rest = [], []
            for pending in group:
                (group_rest if pending.incoming.name in names else wave).append(pending)
                names.add(pending.incoming.name)
            self._commit(wave)
            group = group_rest

    def _commit(self, wave: list[_Pending]) -> None:
        """One transaction: the wave's rows, refusals and audit events, and the reports of new
        studies; each sender is answered after it commits."""
        associations = {id(pending.association): pending.association for pending in wave}.values()
        known_series: dict[str, Series] = {}
        for association in associations:
            known_series.update(association.series)
        try:
            for pending in wave:
                if pending.association.user is None:
                    pending.association.user = dimse_service_user()
            with transaction.atomic():
                result, created = study_ingest(
                    files=[pending.incoming for pending in wave],
                    uploader=wave[0].association.user,
                    source="dimse",
                    known_series=known_series,
                    audit_receipt=False,
                )
                for study in created:  # drafted (when it has an image) once the association ends
                    report_for_study(study=study)
                studies = self._receipts_begin(wave, result)
        except Exception as exc:  # never leave a peer waiting for an answer
            logger.exception("Storing %d instances failed", len(wave))
            for association in associations:  # what was cached may be what was rolled back
                association.series.clear()
            if isinstance(exc, DatabaseError):
                connection.close()  # a broken connection is opened afresh by the next commit
                comment = "MedPortal could not store it now; send it again"
            else:
                comment = f"MedPortal could not store it: {exc}"
            for pending in wave:
                pending.done.set_result((OUT_OF_RESOURCES, comment))
            return
        for association in associations:
            association.series.update(known_series)
        refused = {rejection.name: rejection for rejection in result.rejected}
        duplicates = set(result.duplicate_names)
        for pending in wave:
            rejection = refused.get(pending.incoming.name)
            if rejection is None:
                association = pending.association
                receipt = association.receipts.get(pending.study_uid)
                if receipt is None:
                    receipt = association.receipts[pending.study_uid] = _Receipt(studies[pending.study_uid])
                uid = pending.incoming.parsed.sop_instance_uid
                (receipt.duplicates if pending.incoming.name in duplicates else receipt.stored).append(uid)
                pending.done.set_result((SUCCESS, ""))
            elif rejection.conflict:
                pending.done.set_result((ELEMENTS_DISCARDED, rejection.reason))
            else:
                too_big = len(pending.incoming.data) > settings.MAX_UPLOAD_FILE_BYTES
                code = OUT_OF_RESOURCES if too_big else CANNOT_UNDERSTAND
                pending.done.set_result((code, rejection.reason))

    def _receipts_begin(self, wave: list[_Pending], result: IngestResult) -> dict[str, Study]:
        """In the commit's transaction, one "Receiving instances" event for each association and
        study that gets its first instance here: no instance is ever committed without an event
        naming its study, the peer and the association. The association's "Instances received"
        event, naming every instance, follows when it ends."""
        studies = {study.study_uid: study for study in result.studies}
        refused = {rejection.name for rejection in result.rejected}
        begun: set[tuple[int, str]] = set()
        for pending in wave:
            association, study_uid = pending.association, pending.study_uid
            if pending.incoming.name in refused or study_uid in association.receipts:
                continue
            if (id(association), study_uid) not in begun:
                begun.add((id(association), study_uid))
                study_audit(
                    studies[study_uid],
                    "Receiving instances",
                    event_type=EventType.IMPORT,
                    action=Action.CREATE,
                    user=association.user,
                    detail={
                        **association.audit_detail(),
                        "first_instance": pending.incoming.parsed.sop_instance_uid,
                    },
                )
        return studies


class StoreReceiver:
    """The SCP's event handlers: each C-STORE is parsed in its association's thread, then
    written by the committer; drafts are requested (in a thread of their own) when an
    association ends."""

    def __init__(self):
        self._lock = threading.Lock()
        self._associations: dict[int, _Association] = {}  # by id() of pynetdicom's Association
        self._committer = _Committer(active=lambda: len(self._associations))
        self._drafts = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dimse-draft")

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
            association = self._associations.get(id(event.assoc))
            if association is None:
                association = _Association(calling_ae=event.assoc.requestor.ae_title)
                self._associations[id(event.assoc)] = association
        name = f"C-STORE from {event.assoc.requestor.ae_title}: {event.request.AffectedSOPInstanceUID}"
        incoming = IncomingFile(name, event.encoded_dataset())
        study_uid = ""
        try:
            incoming.parsed = parse_file(incoming)
            study_uid = incoming.parsed.study["study_uid"]
        except IngestError as exc:  # the committer audits the refusal with the others
            incoming.refusal = str(exc)
        code, comment = self._committer.submit(_Pending(incoming, association, study_uid))
        if code != SUCCESS:
            logger.warning("Refused %s: %s", name, comment)
        return _status(code, comment)

    def on_connection_closed(self, event: evt.Event) -> None:
        with self._lock:
            association = self._associations.pop(id(event.assoc), None)
        if association and association.receipts:
            self._drafts.submit(self._finish, association)

    def _finish(self, association: _Association) -> None:
        """Audit what the association brought ("Instances received", one event per study naming
        each instance), then draft each of its studies that has an image and no draft yet."""
        try:
            for receipt in association.receipts.values():
                study_audit(
                    receipt.study,
                    "Instances received",
                    event_type=EventType.IMPORT,
                    action=Action.CREATE,
                    user=association.user,
                    detail={
                        **association.audit_detail(),
                        "stored": len(receipt.stored),
                        "duplicates": len(receipt.duplicates),
                        "instances": receipt.stored,
                        "duplicate_instances": receipt.duplicates,
                    },
                )
        except Exception:  # in a pool thread nobody would see it otherwise
            logger.exception("Auditing association %s failed", association.key)
            connection.close()
        if settings.MEDPORTAL_AUTO_DRAFT:
            self._draft(set(association.receipts), association.user)

    def _draft(self, study_uids: set[str], user: Any) -> None:
        """Draft each study the association brought that has an image and no draft yet."""
        try:
            reports = Report.objects.filter(
                study__study_uid__in=study_uids,
                status=ReportStatus.RECEIVED,
                study__series__instances__is_image=True,
            ).distinct()
            for report in reports.select_related("study"):
                try:
                    study_open_report(study=report.study, user=user, auto_draft=True)
                except ReportError:  # someone requested it in the meantime
                    continue
        except Exception:  # in a pool thread nobody would see it otherwise
            logger.exception("Requesting drafts for studies %s failed", sorted(study_uids))
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
    *,
    host: str,
    port: int,
    ae_title: str,
    low_latency: bool = True,
    receiver: StoreReceiver | None = None,
) -> ThreadedAssociationServer:
    """Start the C-STORE SCP in background threads; stop it with ``server.shutdown()``.

    Peers must call it by ``ae_title``; it answers C-ECHO and accepts every storage SOP
    class (retired ones too) in every transfer syntax this installation decodes.
    ``low_latency=False`` leaves the sockets as the OS makes them and pynetdicom's reactors
    as they are (to measure the difference); ``receiver`` replaces the one that stores (the
    ingest bench measures the server alone with one that stores nothing).
    """
    ae = AE(ae_title=ae_title)
    ae.require_called_aet = True
    transfer_syntaxes = decodable_transfer_syntaxes()
    for sop_class in storage_sop_classes():
        ae.add_supported_context(sop_class, transfer_syntaxes)
    ae.add_supported_context(Verification)
    ae.maximum_pdu_size = MAX_PDU_BYTES
    receiver = receiver or StoreReceiver()
    server = ae.make_server(
        (host, port),
        evt_handlers=receiver.handlers(),
        server_class=_LowLatencyServer if low_latency else ThreadedAssociationServer,
        **({"request_handler": PromptRequestHandler} if low_latency else {}),
    )
    if low_latency:
        server.contexts = SharedContexts(server.contexts)
    ae._servers.append(server)  # as AE.start_server does; server.shutdown() removes it
    threading.Thread(target=server.serve_forever, name="dimse-acceptor", daemon=True).start()
    return server
