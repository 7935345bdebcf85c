"""Where the worker gets pixels: the image store through Django's storage API, or the portal's
WADO-RS (a real daphne on the test database) with a service account's token."""

from __future__ import annotations

import hashlib
import io
import socket
import time

import pydicom
import pytest
from PIL import Image

from inference_worker.pixel_source import PixelSourceError, instance_bytes
from inference_worker.preprocessing import model_image
from medportal.access.roles import Role
from medportal.accounts.services import service_token_issue
from medportal.audit.models import AuditEvent, EventType
from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Instance
from medportal.intake.receive import studies_receive
from tests.conftest import dicom_bytes, dicom_path, make_user, token_header
from tests.e2e.conftest import free_port


@pytest.fixture
def on_the_portal(dicomweb_server, transactional_db, technologist, image_store) -> Instance:
    """CT_small stored over STOW-RS: in the portal's image store, not in this process's."""
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    dicomweb_server.client(technologist).store_instances([ds])
    return Instance.objects.select_related("series__study").get(sop_instance_uid=ds.SOPInstanceUID)


@pytest.fixture
def wado(settings, dicomweb_server, transactional_db):
    """This process set up as a worker with MEDPORTAL_PIXEL_SOURCE=wado and a service token."""
    _, key = service_token_issue(name="worker-test")
    settings.MEDPORTAL_PIXEL_SOURCE = "wado"
    settings.MEDPORTAL_PORTAL_URL = dicomweb_server.base_url
    settings.MEDPORTAL_SERVICE_TOKEN = key
    return settings


def test_the_storage_source_reads_through_the_storage_api_only(settings, db, technologist):
    # An in-memory store has no files and no paths: only storage.open() can read it.
    settings.STORAGES = {
        **settings.STORAGES,
        "images": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    _, reports = studies_receive(
        files=[IncomingFile("CT_small.dcm", dicom_bytes("CT_small.dcm"))],
        uploader=technologist,
        auto_draft=False,
    )
    instance = Instance.objects.get(series__study=reports[0].study)

    image, preprocessing = model_image(instance, "CT")

    assert image.size == (896, 896)
    assert preprocessing["pixel_source"] == "storage" and preprocessing["method"] == "ct-hu-3-windows"
    assert hashlib.sha256(instance_bytes(instance)).hexdigest() == instance.sha256


def test_the_wado_source_fetches_the_file_the_portal_stored(wado, on_the_portal, dicomweb_server):
    wado.MEDPORTAL_PIXEL_SOURCE = "storage"
    with pytest.raises(FileNotFoundError):  # this process's image store has nothing
        instance_bytes(on_the_portal)
    wado.MEDPORTAL_PIXEL_SOURCE = "wado"

    data = instance_bytes(on_the_portal)

    assert data == (dicomweb_server.image_store / on_the_portal.storage_name).read_bytes()
    image, preprocessing = model_image(on_the_portal, "CT")
    assert image.size == (896, 896) and preprocessing["pixel_source"] == "wado"


def test_fetches_are_audited_as_instance_access_by_the_service_account(wado, on_the_portal):
    before = AuditEvent.objects.filter(
        event_type=EventType.INSTANCES_ACCESSED, username="worker-test"
    ).count()

    instance_bytes(on_the_portal)
    instance_bytes(on_the_portal)

    # Once per viewing session (the worker's token, the study): the second fetch is covered.
    events = AuditEvent.objects.filter(event_type=EventType.INSTANCES_ACCESSED, username="worker-test")
    assert events.count() == before + 1
    event = events.latest("id")
    assert event.role == "service" and event.detail["service"] == "WADO-RS"
    assert event.study_uid == on_the_portal.series.study.study_uid
    assert event.detail["sop_instance_uids"] == [on_the_portal.sop_instance_uid]


def test_a_wrong_token_fails_at_once_with_the_reason(wado, on_the_portal):
    wado.MEDPORTAL_SERVICE_TOKEN = "not-a-token"
    started = time.monotonic()

    with pytest.raises(
        PixelSourceError, match=r"refused the worker's service token \(401\).*MEDPORTAL_SERVICE_TOKEN"
    ):
        instance_bytes(on_the_portal)
    assert time.monotonic() - started < 5  # a refusal is not retried


def test_a_token_of_a_person_without_the_role_is_refused_with_the_reason(wado, on_the_portal):
    auditor = make_user("audrey", Role.AUDITOR)
    wado.MEDPORTAL_SERVICE_TOKEN = token_header(auditor)["HTTP_AUTHORIZATION"].split()[1]

    with pytest.raises(PixelSourceError, match=r"refused the image to the worker's account \(403\)"):
        instance_bytes(on_the_portal)


def test_an_unreachable_portal_fails_with_the_reason(wado, on_the_portal):
    wado.MEDPORTAL_PORTAL_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    with pytest.raises(PixelSourceError, match="could not reach the portal at http://127.0.0.1:"):
        instance_bytes(on_the_portal)


def test_a_portal_that_never_answers_times_out_with_the_reason(wado, on_the_portal):
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        wado.MEDPORTAL_PORTAL_URL = f"http://127.0.0.1:{silent.getsockname()[1]}"
        wado.MEDPORTAL_PIXEL_FETCH_TIMEOUT_S = 1
        started = time.monotonic()

        with pytest.raises(PixelSourceError, match="did not answer within 1 s"):
            instance_bytes(on_the_portal)
    assert time.monotonic() - started < 15  # three attempts of 1 s and two pauses, not a hang


def test_a_png_study_cannot_be_drafted_from_wado_and_says_so(wado, technologist):
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 128).save(buffer, format="PNG")
    _, reports = studies_receive(
        files=[IncomingFile("chest.png", buffer.getvalue())], uploader=technologist, auto_draft=False
    )
    instance = Instance.objects.get(series__study=reports[0].study)

    with pytest.raises(PixelSourceError, match="WADO-RS serves DICOM only"):
        instance_bytes(instance)
