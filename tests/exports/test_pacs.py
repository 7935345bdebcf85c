"""Send to PACS, against real receivers started here: dcmtk's storescp (DIMSE C-STORE), a
STOW-RS receiver on a socket, and MedPortal's own STOW-RS and C-STORE SCP (which refuse an SR:
they take images only)."""

from __future__ import annotations

import io
import socket
import subprocess
import time

import highdicom as hd
import pydicom
import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from pydicom.uid import generate_uid

from medportal.accounts.models import ApiToken
from medportal.audit.models import Action, AuditEvent, EventType, Outcome
from medportal.exports.content import signed_report as signed_content
from medportal.exports.dicom_sr import sr_uids
from medportal.imaging.ingest import IncomingFile, study_ingest
from tests.conftest import dicom_path
from tests.e2e.conftest import free_port
from tests.exports.conftest import CT_STUDY_UID, FINDINGS, received_report, signed
from tests.exports.stow_receiver import start_stow_receiver
from tests.intake.test_dimse import AE_TITLE, running_scp


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"storescp exited with {process.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing listens on port {port}")


@pytest.fixture
def storescp(tmp_path, settings):
    """dcmtk's storescp as the PACS; settings point MedPortal's C-STORE at it."""
    port, folder = free_port(), tmp_path / "pacs"
    folder.mkdir()
    process = subprocess.Popen(
        ["storescp", "--aetitle", "TESTPACS", "--output-directory", str(folder), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        settings.MEDPORTAL_PACS_HOST, settings.MEDPORTAL_PACS_PORT = "127.0.0.1", port
        settings.MEDPORTAL_PACS_AE = "TESTPACS"
        yield folder
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def stow(settings):
    receiver, server = start_stow_receiver(token="s3cret")
    settings.MEDPORTAL_PACS_STOW_URL = receiver.url
    settings.MEDPORTAL_PACS_STOW_TOKEN = "s3cret"
    yield receiver
    server.shutdown()
    server.server_close()


def send(client, user, report):
    client.force_login(user)
    return client.post(reverse("report-send-pacs", args=[report.pk]))


def pacs_events():
    return AuditEvent.objects.filter(event_type=EventType.INSTANCES_STORED, object_type="report")


def test_send_to_pacs_stores_the_sr_in_a_dimse_pacs(client, rita, signed_report, storescp):
    response = send(client, rita, signed_report)

    assert response.status_code == 302
    assert response["Location"] == reverse("study-detail", args=[signed_report.study_id])
    (stored,) = list(storescp.iterdir())
    sr = hd.sr.ComprehensiveSR.from_dataset(pydicom.dcmread(stored))
    assert sr.StudyInstanceUID == CT_STUDY_UID
    assert sr.VerificationFlag == "VERIFIED"
    findings = next(i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeMeaning == "Findings")
    assert findings.ContentSequence[0].TextValue == FINDINGS
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("Report sent to the PACS (DICOM AE TESTPACS at 127.0.0.1:")
    assert message.endswith(f"as DICOM SR {sr.SOPInstanceUID}.")
    event = pacs_events().get()
    assert (event.action, event.outcome, event.study_uid) == (Action.READ, Outcome.SUCCESS, CT_STUDY_UID)
    assert event.detail["sop_instance_uid"] == sr.SOPInstanceUID
    assert event.detail["destination"].startswith("DICOM AE TESTPACS at 127.0.0.1:")


def test_an_unreachable_pacs_is_a_502_with_the_reason_and_the_failure_is_audited(
    client, rita, signed_report, settings
):
    settings.MEDPORTAL_PACS_HOST, settings.MEDPORTAL_PACS_PORT = "127.0.0.1", free_port()  # nobody listens
    settings.MEDPORTAL_PACS_TIMEOUT = 5

    response = send(client, rita, signed_report)

    assert response.status_code == 502
    page = response.content.decode()
    assert "Not sent to the PACS" in page
    assert "could not be reached: no association could be made." in page
    event = pacs_events().get()
    assert event.outcome == Outcome.SERIOUS_FAILURE
    assert "could not be reached" in event.detail["reason"]


def test_send_to_pacs_over_stow_rs_with_the_token(client, rita, amended_report, stow):
    response = send(client, rita, amended_report)

    assert response.status_code == 302
    (sr,) = stow.received
    assert stow.authorizations == ["Bearer s3cret"]
    assert sr.StudyInstanceUID == CT_STUDY_UID
    assert sr.InstanceNumber == 3  # the report and its two addenda
    assert "Report sent to the PACS (DICOMweb STOW-RS http://127.0.0.1:" in str(
        list(get_messages(response.wsgi_request))[0]
    )
    assert pacs_events().get().outcome == Outcome.SUCCESS


def test_a_wrong_token_is_reported_with_the_pacs_answer(client, rita, signed_report, stow, settings):
    settings.MEDPORTAL_PACS_STOW_TOKEN = "stale"

    response = send(client, rita, signed_report)

    assert response.status_code == 502
    assert "did not store the report (HTTP 401)" in response.content.decode()
    assert stow.received == []
    assert "s3cret" not in pacs_events().get().detail["reason"]


def test_no_pacs_configured_is_refused_with_409(client, rita, signed_report):
    response = send(client, rita, signed_report)

    assert response.status_code == 409
    assert "No PACS is configured" in response.content.decode()
    assert pacs_events().get().outcome == Outcome.MINOR_FAILURE


def test_an_unsigned_report_is_not_sent(client, rita, storescp):
    report = received_report(rita)

    response = send(client, rita, report)

    assert response.status_code == 409
    assert "Only a signed report can be exported" in response.content.decode()
    assert list(storescp.iterdir()) == []
    assert pacs_events().get().outcome == Outcome.MINOR_FAILURE


@pytest.fixture
def medportal_pacs(dicomweb_server, transactional_db, settings, rita):
    """Another MedPortal as the PACS: its STOW-RS, with a token of a user who may upload."""
    _, key = ApiToken.issue(user=rita, name="pacs")
    settings.MEDPORTAL_PACS_STOW_URL = dicomweb_server.url("studies")
    settings.MEDPORTAL_PACS_STOW_TOKEN = key
    settings.MEDPORTAL_PACS_STOW_AUTH_SCHEME = "Token"
    return dicomweb_server


def test_a_pacs_that_refuses_the_sr_gives_its_reason(client, rita, medportal_pacs):
    report = signed(received_report(rita), rita)
    # The receiving MedPortal holds other content under the SR's SOP Instance UID already.
    _, sop_uid = sr_uids(signed_content(report))
    other = pydicom.dcmread(dicom_path("CT_small.dcm"))
    other.StudyInstanceUID, other.SeriesInstanceUID = generate_uid(), generate_uid()
    other.SOPInstanceUID = other.file_meta.MediaStorageSOPInstanceUID = sop_uid
    out = io.BytesIO()
    other.save_as(out, enforce_file_format=True)
    study_ingest(files=[IncomingFile("other.dcm", out.getvalue())], uploader=rita)

    response = send(client, rita, report)

    assert response.status_code == 502
    page = response.content.decode()
    # 0x0111: Duplicate SOP Instance, and the receiver's Error Comment.
    assert "did not store the report (HTTP 409): failure reason 0x0111 (conflict: SOP Instance UID" in page
    assert AuditEvent.objects.get(event_type=EventType.INSTANCES_STORED, object_type="report").outcome == (
        Outcome.SERIOUS_FAILURE
    )


def test_a_dimse_pacs_that_refuses_the_sr_gives_its_status_and_comment(
    client, rita, transactional_db, settings, tmp_path
):
    """MedPortal's own C-STORE SCP as the PACS, with a size limit the SR is over: it says so."""
    report = signed(received_report(rita), rita)
    with running_scp(tmp_path / "pacs-images", MEDPORTAL_MAX_UPLOAD_FILE_BYTES="1000") as scp:
        settings.MEDPORTAL_PACS_HOST, settings.MEDPORTAL_PACS_PORT = "127.0.0.1", scp.port
        settings.MEDPORTAL_PACS_AE = AE_TITLE

        response = send(client, rita, report)

    assert response.status_code == 502
    assert (
        f"The PACS (DICOM AE {AE_TITLE} at 127.0.0.1:{scp.port}) refused the report: status 0xA700"
        " (the file is " in response.content.decode()
    )
