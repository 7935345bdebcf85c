"""The DICOM C-STORE SCP (``manage.py dicom_scp``) against dcmtk's echoscu and storescu.

The SCP runs as a subprocess on the test database, as in production; each test takes
``transactional_db`` so the SCP sees the rows and they are removed afterwards. New
studies are drafted automatically, into a queue of this module's own that no worker reads.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
import redis
from django.conf import settings
from PIL import Image
from pydicom.uid import generate_uid

from medportal.access.roles import Role, has_role
from medportal.audit.models import Action, AuditEvent, EventType, Outcome
from medportal.imaging.models import Instance, Series, Study
from medportal.imaging.pixels import display_array, png_bytes
from medportal.imaging.services import instance_render_png
from medportal.imaging.storage import blob_read
from medportal.reporting.models import Report, ReportStatus
from tests.conftest import dicom_path
from tests.e2e.conftest import ARTIFACTS, ROOT, database_url, free_port, stop, wait_for_log

AE_TITLE = "MEDPORTAL"


@dataclass
class Scp:
    port: int
    queue: str
    image_store: Path
    log: Path

    def command(self, tool: str, *args: str, called: str = AE_TITLE, calling: str = "MODALITY1") -> list[str]:
        """A dcmtk tool's command line against the SCP; -d shows every message, including a
        status's ErrorComment."""
        return [tool, "-d", "-aet", calling, "-aec", called, "127.0.0.1", str(self.port), *args]

    def run(self, tool: str, *args: str, called: str = AE_TITLE) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(tool, *args, called=called), capture_output=True, text=True, timeout=60
        )

    def store(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("storescu", *args)


def statuses(sent: subprocess.CompletedProcess) -> list[str]:
    """The status of each C-STORE response, as storescu prints it: "0x0000: Success"."""
    return re.findall(r"DIMSE Status\s+: (.+)", sent.stderr)


def error_comments(sent: subprocess.CompletedProcess) -> list[str]:
    return re.findall(r"\(0000,0902\) LO \[(.*)\]", sent.stderr)


SUCCESS = "0x0000: Success"


@contextmanager
def running_scp(store: Path, **more_env: str) -> Iterator[Scp]:
    assert shutil.which("storescu") and shutil.which("echoscu"), "dcmtk is missing: bin/test installs it"
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    queue = f"dimse-{uuid.uuid4().hex[:8]}"
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        MEDPORTAL_QUEUE=queue,
        MEDPORTAL_AUTO_DRAFT="true",
        MEDPORTAL_IMAGE_STORE=str(store),
        MEDPORTAL_DATA_DIR=str(settings.DATA_DIR),
        MEDPORTAL_DIMSE_AE_TITLE=AE_TITLE,
        MEDPORTAL_DIMSE_PORT=str(port),
        PYTHONPATH=str(ROOT),
        **more_env,
    )
    log_path = ARTIFACTS / f"{queue}.log"
    log = open(log_path, "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "manage.py", "dicom_scp", "--host", "127.0.0.1"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_log(str(log_path), f"listening on 127.0.0.1:{port}".encode(), process)
        yield Scp(port=port, queue=queue, image_store=store, log=log_path)
    finally:
        stop(process)
        log.close()
        redis.Redis.from_url(settings.REDIS_URL).delete(queue)


@pytest.fixture(scope="module")
def scp(django_db_setup, tmp_path_factory) -> Iterator[Scp]:
    """One SCP for the module (it starts in seconds, not milliseconds)."""
    with running_scp(tmp_path_factory.mktemp("dimse") / "images") as running:
        yield running


@pytest.fixture
def server(scp, transactional_db, settings) -> Scp:
    """The SCP, with this process reading the same image store and an empty draft queue."""
    images = settings.STORAGES["images"]
    settings.STORAGES = {
        **settings.STORAGES,
        "images": {**images, "OPTIONS": {**images["OPTIONS"], "location": scp.image_store}},
    }
    redis.Redis.from_url(settings.REDIS_URL).delete(scp.queue)
    return scp


def queued_drafts(scp: Scp, *, expect: int = 0, timeout: float = 10) -> int:
    """Draft tasks in the SCP's queue; waits a while for ``expect`` of them (sent after commit)."""
    deadline = time.monotonic() + timeout
    while True:
        count = redis.Redis.from_url(settings.REDIS_URL).llen(scp.queue)
        if count >= expect or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


def wait_for_report(study: Study, status: str, timeout: float = 15) -> Report:
    """Drafts are requested when the association has closed, just after storescu exits."""
    deadline = time.monotonic() + timeout
    while True:
        report = Report.objects.get(study=study)
        if report.status == status or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


def assert_draft_queued_once(scp: Scp, study: Study) -> None:
    """Every study that arrives gets its draft requested once, when the association ends.
    (Waiting for it also keeps the SCP from writing while the test database is flushed.)"""
    report = wait_for_report(study, ReportStatus.QUEUED)
    assert (report.status, report.attempt) == (ReportStatus.QUEUED, 1)
    assert queued_drafts(scp, expect=1) == 1


def receipts_audited(expect: int, timeout: float = 10) -> list[AuditEvent]:
    """The "Instances received" events, one per association and study, written when the
    association ends (just after storescu exits): waits a while for ``expect`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        received = list(
            AuditEvent.objects.filter(event_type=EventType.IMPORT, description="Instances received")
        )
        if len(received) >= expect or time.monotonic() > deadline:
            return received
        time.sleep(0.1)


def ct_series(folder: Path, count: int) -> tuple[str, list[Path]]:
    """``count`` distinct CT slices (new SOP Instance UIDs) of one new study and series."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid, series_uid = generate_uid(), generate_uid()
    paths = []
    for number in range(1, count + 1):
        ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = number
        paths.append(folder / f"ct-{number}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return study_uid, paths


# -- C-ECHO and association ------------------------------------------------------------------


def test_echoscu_gets_a_successful_echo(server):
    echo = server.run("echoscu")
    assert echo.returncode == 0, echo.stderr
    assert "Received Echo Response (Success)" in echo.stderr


def test_a_peer_calling_another_ae_title_is_rejected(server):
    echo = server.run("echoscu", called="SOMEPACS")
    assert echo.returncode != 0
    assert "Association Rejected" in echo.stderr
    assert "Called AE Title Not Recognized" in echo.stderr


# -- C-STORE -----------------------------------------------------------------------------------


def test_storescu_stores_ct_small_as_the_dimse_service_user(server):
    header = pydicom.dcmread(dicom_path("CT_small.dcm"), stop_before_pixels=True)

    sent = server.store(str(dicom_path("CT_small.dcm")))

    assert sent.returncode == 0, sent.stderr
    assert statuses(sent) == [SUCCESS]
    study = Study.objects.select_related("patient", "uploaded_by").get()
    assert (study.study_uid, study.modality, study.patient.patient_id) == (
        header.StudyInstanceUID,
        "CT",
        "1CT1",
    )
    instance = Instance.objects.get()
    assert instance.sop_instance_uid == header.SOPInstanceUID
    assert instance.original_name == f"C-STORE from MODALITY1: {header.SOPInstanceUID}"
    # The stored file is a Part-10 file with a zeroed preamble and the same image.
    stored = pydicom.dcmread(io.BytesIO(blob_read(instance.sha256)))
    assert blob_read(instance.sha256)[:132] == bytes(128) + b"DICM"
    assert stored.pixel_array.tolist() == pydicom.dcmread(dicom_path("CT_small.dcm")).pixel_array.tolist()
    # Who stored it: the service user, a technologist who cannot log in.
    dimse = study.uploaded_by
    assert dimse.username == "dimse"
    assert has_role(dimse, Role.TECHNOLOGIST)
    assert not has_role(dimse, Role.RADIOLOGIST, Role.ADMIN)
    assert not dimse.has_usable_password()
    # Audited in the instance's own transaction (the study, the peer, the association), then,
    # when the association ends, one event naming every instance it stored.
    [received] = receipts_audited(1)
    began, ended = AuditEvent.objects.filter(event_type=EventType.IMPORT).order_by("seq")
    assert ended == received
    assert [(e.description, e.outcome, e.username) for e in (began, ended)] == [
        ("Receiving instances", Outcome.SUCCESS, "dimse"),
        ("Instances received", Outcome.SUCCESS, "dimse"),
    ]
    for event in (began, ended):
        assert (event.study_uid, event.patient_id) == (study.study_uid, "1CT1")
        assert (event.detail["source"], event.detail["calling_ae"]) == ("dimse", "MODALITY1")
    assert began.detail["association"] == ended.detail["association"]
    assert began.detail["first_instance"] == header.SOPInstanceUID
    assert (ended.detail["stored"], ended.detail["instances"]) == (1, [header.SOPInstanceUID])
    # The report is opened and its draft requested once the association has ended.
    assert_draft_queued_once(server, study)


# (file, storescu's option to propose the file's transfer syntax)
LOSSLESS_COPIES_OF_MR_SMALL = [
    ("MR_small_jpeg_ls_lossless.dcm", "-xt"),  # JPEG-LS lossless
    ("MR_small_jp2klossless.dcm", "-xv"),  # JPEG 2000 lossless
    ("MR_small_RLE.dcm", "-xr"),  # RLE lossless
]


@pytest.mark.parametrize(("name", "propose"), LOSSLESS_COPIES_OF_MR_SMALL)
def test_a_compressed_instance_is_kept_as_sent_and_renders_like_the_original(server, name, propose):
    sent = server.store("-R", propose, str(dicom_path(name)))

    assert sent.returncode == 0, sent.stderr
    assert statuses(sent) == [SUCCESS]
    instance = Instance.objects.get()
    stored = pydicom.dcmread(io.BytesIO(blob_read(instance.sha256)))
    # Not decompressed on the way: the transfer syntax is the file's own.
    assert stored.file_meta.TransferSyntaxUID == pydicom.dcmread(dicom_path(name)).file_meta.TransferSyntaxUID
    original = pydicom.dcmread(dicom_path("MR_small.dcm"))
    assert (instance.rows, instance.columns) == (original.Rows, original.Columns)
    assert instance_render_png(instance=instance) == png_bytes(display_array(original))
    assert_draft_queued_once(server, instance.series.study)


def test_a_jpeg_baseline_colour_instance_is_stored_and_renders(server):
    sent = server.store("-R", "-xy", str(dicom_path("SC_rgb_jpeg_dcmtk.dcm")))

    assert sent.returncode == 0, sent.stderr
    instance = Instance.objects.get()
    assert (instance.rows, instance.columns, instance.photometric_interpretation) == (100, 100, "YBR_FULL")
    with Image.open(io.BytesIO(instance_render_png(instance=instance))) as image:
        assert (image.mode, image.size) == ("RGB", (100, 100))
    assert_draft_queued_once(server, instance.series.study)


def test_sending_the_same_instance_again_is_idempotent(server):
    ct = str(dicom_path("CT_small.dcm"))

    first = server.store(ct, ct)  # twice in one association
    again = server.store(ct)  # and in another

    assert first.returncode == again.returncode == 0
    assert statuses(first) == [SUCCESS, SUCCESS]
    assert statuses(again) == [SUCCESS]
    assert Study.objects.count() == Series.objects.count() == Instance.objects.count() == 1
    study = Study.objects.get()
    assert Report.objects.filter(study=study).count() == 1
    # One event per association: the first stored it and got it again, the second got it again.
    received = receipts_audited(2)
    assert [(e.detail["stored"], e.detail["duplicates"]) for e in received] == [(1, 1), (0, 1)]
    assert received[1].detail["duplicate_instances"] == [Instance.objects.get().sop_instance_uid]
    # Drafted once: the second association brought nothing new.
    assert_draft_queued_once(server, study)
    time.sleep(1)  # time enough for a wrong second request to show
    assert queued_drafts(server) == 1
    assert Report.objects.get(study=study).attempt == 1


def test_a_study_sent_in_one_association_is_drafted_once_when_it_ends(server, tmp_path):
    study_uid, paths = ct_series(tmp_path / "study", 5)

    sent = server.store("+sd", str(paths[0].parent))

    assert sent.returncode == 0, sent.stderr
    assert statuses(sent) == [SUCCESS] * 5
    study = Study.objects.get(study_uid=study_uid)
    assert Instance.objects.filter(series__study=study).count() == 5
    assert_draft_queued_once(server, study)
    requested = AuditEvent.objects.filter(description="AI draft requested")
    assert [(e.action, e.username) for e in requested] == [(Action.EXECUTE, "dimse")]
    # Five instances, one association: one event as the first is committed, one naming all five.
    assert AuditEvent.objects.filter(description="Receiving instances", study_uid=study_uid).count() == 1
    [received] = receipts_audited(1)
    sent_uids = {pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID for path in paths}
    assert (received.study_uid, received.detail["stored"]) == (study_uid, 5)
    assert set(received.detail["instances"]) == sent_uids


def test_modalities_sending_at_once_each_get_every_instance_stored(server, tmp_path):
    """Four associations at once, each negotiating its own transfer syntax from the server's one
    list of contexts; one sends 512x512 slices, which dcmtk splits into several PDUs."""
    senders = {"explicit": ["-xe"], "implicit": ["-xi"], "deflated": ["-xd"], "large": ["-xe"]}
    studies = {}
    for name in senders:
        studies[name], paths = ct_series(tmp_path / name, 6)
        if name == "large":
            for path in paths:
                ds = pydicom.dcmread(path)
                pixels = ds.pixel_array
                ds.Rows = ds.Columns = 512
                ds.PixelData = np.resize(pixels, (512, 512)).astype(pixels.dtype).tobytes()
                ds.save_as(path, enforce_file_format=True)
    storescu = {
        name: subprocess.Popen(
            server.command("storescu", *options, "+sd", str(tmp_path / name), calling=name.upper()),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, options in senders.items()
    }
    for name, process in storescu.items():
        output, errors = process.communicate(timeout=60)  # -d writes more than a pipe holds
        sent = subprocess.CompletedProcess(process.args, process.returncode, output, errors)
        assert statuses(sent) == [SUCCESS] * 6, (name, errors[-2000:])
    for name, study_uid in studies.items():
        instances = Instance.objects.filter(series__study__study_uid=study_uid)
        assert instances.count() == 6, name
        assert {instance.original_name.split(":")[0] for instance in instances} == {
            f"C-STORE from {name.upper()}"
        }
    large = Instance.objects.filter(series__study__study_uid=studies["large"]).first()
    assert display_array(pydicom.dcmread(io.BytesIO(blob_read(large.sha256)))).shape == (512, 512)
    received = receipts_audited(4)
    assert sorted((e.detail["calling_ae"], e.detail["stored"]) for e in received) == sorted(
        (name.upper(), 6) for name in senders
    )


# -- refusals ----------------------------------------------------------------------------------

REFUSED = [
    # A JPEG stream no installed decoder reads (pydicom's own tests treat it as broken).
    pytest.param("JPEG-lossy.dcm", ["-R", "-xx"], "DICOM image cannot be decoded: ", id="undecodable"),
]


@pytest.mark.parametrize(("name", "options", "reason"), REFUSED)
def test_a_file_ingest_refuses_gets_a_failure_status_with_the_reason(server, name, options, reason):
    sent = server.store(*options, str(dicom_path(name)))

    assert sent.returncode != 0
    assert statuses(sent) == ["0xc000: Error: Cannot understand"]
    [comment] = error_comments(sent)
    assert comment.startswith(reason)  # the ErrorComment: the reason, cut to 64 characters
    assert Study.objects.count() == Instance.objects.count() == 0
    refused = AuditEvent.objects.get(event_type=EventType.IMPORT)
    assert (refused.description, refused.outcome, refused.username) == (
        "File refused",
        Outcome.MINOR_FAILURE,
        "dimse",
    )
    assert refused.detail["source"] == "dimse"
    assert refused.detail["reason"].startswith(reason)
    assert queued_drafts(server) == 0


def test_a_multi_frame_jpeg_instance_is_stored_with_all_its_frames(server):
    sent = server.store("-R", "-xy", str(dicom_path("examples_ybr_color.dcm")))  # 30 frames, YBR_FULL_422

    assert sent.returncode == 0, sent.stderr
    instance = Instance.objects.get()
    assert instance.number_of_frames == 30
    with Image.open(io.BytesIO(instance_render_png(instance=instance, frame=29))) as image:
        assert (image.mode, image.size) == ("RGB", (320, 240))
    assert_draft_queued_once(server, instance.series.study)


def test_a_file_over_the_size_limit_gets_out_of_resources(transactional_db, tmp_path):
    """The SCP applies the upload limit (MEDPORTAL_MAX_UPLOAD_FILE_BYTES) and says so with 0xA700."""
    with running_scp(tmp_path / "images", MEDPORTAL_MAX_UPLOAD_FILE_BYTES="10000") as small:
        sent = small.store(str(dicom_path("CT_small.dcm")))

    assert sent.returncode != 0
    assert statuses(sent) == ["0xa700: Refused: Out of resources"]
    [comment] = error_comments(sent)
    assert re.fullmatch(r"the file is 39,\d{3} bytes; the limit is 10,000 bytes", comment)
    assert Instance.objects.count() == 0
    refused = AuditEvent.objects.get(event_type=EventType.IMPORT)
    assert (refused.description, refused.username) == ("File refused", "dimse")
    assert refused.detail["reason"].endswith("the limit is 10,000 bytes")
