"""The automation API: token authentication, roles, uploads, and the report lifecycle as JSON."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from medportal.audit.models import AuditEvent, Outcome
from medportal.imaging.models import Instance, Study
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.services import drafts
from medportal.reporting.services.drafts import DraftProvenance
from tests.conftest import PASSWORD, dicom_bytes, token_header

DRAFT = "FINDINGS: No acute cardiopulmonary abnormality.\nIMPRESSION: Normal chest radiograph."
PROVENANCE = DraftProvenance(
    model_id="tiny",
    model_revision="rev-1",
    prompt="Write the report with a FINDINGS section and an IMPRESSION section.",
    generation_params={"max_new_tokens": 64},
    preprocessing={"frames": 1},
    time_to_first_token_ms=10.0,
    tokens_per_second=50.0,
    generated_tokens=12,
)
PROVENANCE_KEYS = {
    "ai_assisted",
    "template",
    "instruction",
    "drafted_at",
    "model_id",
    "model_revision",
    "prompt",
    "generation_params",
    "preprocessing",
    "time_to_first_token_ms",
    "tokens_per_second",
    "generated_tokens",
}


def dicom_upload(name: str = "CT_small.dcm") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, dicom_bytes(name), content_type="application/dicom")


def text_upload(name: str = "notes.txt") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"Patient notes, not an image.\n" * 10, content_type="text/plain")


def upload(client, headers, *files, **fields):
    return client.post(reverse("api-studies"), {"files": list(files), **fields}, **headers)


def put_json(client, url: str, body, headers):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.put(url, data=data, content_type="application/json", **headers)


def post_json(client, url: str, body, headers):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", **headers)


def report_url(report_id: int) -> str:
    return reverse("api-report", kwargs={"report_id": report_id})


def draft_url(report_id: int) -> str:
    return reverse("api-report-draft", kwargs={"report_id": report_id})


def sign_url(report_id: int) -> str:
    return reverse("api-report-sign", kwargs={"report_id": report_id})


@pytest.fixture
def no_auto_draft(settings):
    settings.MEDPORTAL_AUTO_DRAFT = False


@pytest.fixture
def rita(radiologist) -> dict[str, str]:
    return token_header(radiologist)


@pytest.fixture
def received(client, rita, no_auto_draft) -> dict:
    """A study uploaded through the API, its report waiting for a draft."""
    response = upload(client, rita, dicom_upload())
    assert response.status_code == 201
    return response.json()["studies"][0]["report"]


@pytest.fixture
def drafted(received) -> dict:
    """The same report after the worker's service path wrote the AI draft."""
    report = Report.objects.get(pk=received["id"])
    attempt = drafts.draft_request(report=report, user=None).attempt
    claim = drafts.draft_start(report_id=report.pk, attempt=attempt)
    assert drafts.draft_finish(claim=claim, text=DRAFT, provenance=PROVENANCE)
    return received


# -- authentication and roles ----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    [None, "Token not-a-real-key", "Token ", "Bearer whatever", "not-even-a-scheme"],
)
def test_a_request_without_a_valid_token_is_refused(client, authorization, radiologist):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = upload(client, headers, dicom_upload())
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == "Token"
    assert "Token" in response.json()["error"]
    assert not Study.objects.exists()


@pytest.mark.django_db
def test_a_real_key_under_another_scheme_or_of_an_inactive_user_is_refused(client, radiologist):
    key = token_header(radiologist)["HTTP_AUTHORIZATION"].removeprefix("Token ")
    assert client.get(report_url(1), HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401
    radiologist.is_active = False
    radiologist.save()
    response = client.get(report_url(1), HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 401
    assert "error" in response.json()


@pytest.mark.django_db
def test_an_auditor_cannot_create_a_study(client, auditor):
    response = upload(client, token_header(auditor), dicom_upload())
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "Your role does not allow this."
    assert not Study.objects.exists()


@pytest.mark.django_db
def test_a_user_without_a_role_cannot_read_a_report(client, outsider, received):
    response = client.get(report_url(received["id"]), **token_header(outsider))
    assert response.status_code == 403
    assert "error" in response.json()
    assert "draft_text" not in response.json()


@pytest.mark.django_db
def test_a_technologist_can_read_but_not_edit_or_sign(client, technologist, drafted):
    headers = token_header(technologist)
    assert client.get(report_url(drafted["id"]), **headers).status_code == 200

    edit = put_json(
        client, report_url(drafted["id"]), {"findings": "x", "impression": "y", "version": 1}, headers
    )
    assert edit.status_code == 403
    assert edit.json()["error"] == "Your role does not allow editing reports."

    sign = post_json(client, sign_url(drafted["id"]), {"password": PASSWORD}, headers)
    assert sign.status_code == 403
    assert sign.json()["error"] == "Your role does not allow this."

    report = Report.objects.get(pk=drafted["id"])
    assert (report.status, report.version, report.impression) == (
        ReportStatus.DRAFTED,
        1,
        "Normal chest radiograph.",
    )


@pytest.mark.django_db
def test_a_method_an_endpoint_does_not_take_is_refused(client, rita, received):
    response = client.delete(report_url(received["id"]), **rita)
    assert response.status_code == 405
    assert "error" in response.json()
    assert Report.objects.filter(pk=received["id"]).exists()


# -- uploads ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_uploading_a_dicom_file_creates_a_study_and_its_report(client, rita, no_auto_draft):
    response = upload(client, rita, dicom_upload(), indication="Cough for two weeks.")
    assert response.status_code == 201
    body = response.json()
    assert (body["stored"], body["duplicates"], body["rejected"]) == (1, 0, [])
    [study] = body["studies"]
    assert study["modality"] == "CT"
    assert study["instances"] == 1
    assert study["indication"] == "Cough for two weeks."
    report = study["report"]
    assert report["status"] == ReportStatus.RECEIVED
    assert report["stream_url"].startswith("ws://")
    assert report["stream_url"] == f"ws://testserver/ws/reports/{report['id']}/"
    assert report["url"] == f"http://testserver/api/reports/{report['id']}/"

    stored = Study.objects.get(pk=study["id"])
    assert stored.study_uid == study["study_uid"]
    assert stored.report.pk == report["id"]


@pytest.mark.django_db
def test_an_upload_queues_a_draft_when_auto_draft_is_on(client, rita, settings):
    settings.MEDPORTAL_AUTO_DRAFT = True
    response = upload(client, rita, dicom_upload())
    assert response.status_code == 201
    report = response.json()["studies"][0]["report"]
    assert (report["status"], report["attempt"]) == (ReportStatus.QUEUED, 1)


@pytest.mark.django_db
def test_uploading_the_same_file_again_is_a_duplicate_of_the_same_study(client, rita, received):
    response = upload(client, rita, dicom_upload())
    assert response.status_code == 201
    body = response.json()
    assert (body["stored"], body["duplicates"]) == (0, 1)
    assert body["studies"][0]["report"]["id"] == received["id"]
    assert Study.objects.count() == 1


@pytest.mark.django_db
def test_a_file_that_is_not_an_image_is_refused_and_nothing_is_stored(client, rita, no_auto_draft):
    response = upload(client, rita, text_upload())
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "No file was accepted."
    assert body["rejected"] == [{"file": "notes.txt", "reason": "not a DICOM Part-10 file, PNG or JPEG"}]
    assert not Study.objects.exists()
    assert not Instance.objects.exists()
    assert not Report.objects.exists()
    refusal = AuditEvent.objects.get(description="File refused")
    assert (refusal.username, refusal.outcome) == ("rita", Outcome.MINOR_FAILURE)


@pytest.mark.django_db
def test_an_upload_without_files_is_refused(client, rita):
    response = client.post(reverse("api-studies"), {"indication": "nothing"}, **rita)
    assert response.status_code == 400
    assert response.json()["error"] == "no files were uploaded"
    assert not Study.objects.exists()


@pytest.mark.django_db
def test_a_mixed_upload_stores_the_good_file_and_lists_the_bad_one(client, rita, no_auto_draft):
    response = upload(client, rita, text_upload("report.pdf"), dicom_upload())
    assert response.status_code == 201
    body = response.json()
    assert body["stored"] == 1
    assert body["rejected"] == [{"file": "report.pdf", "reason": "not a DICOM Part-10 file, PNG or JPEG"}]
    assert len(body["studies"]) == 1
    assert Study.objects.count() == 1
    assert Instance.objects.get().original_name == "CT_small.dcm"


# -- reading ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reading_a_drafted_report_shows_its_text_and_provenance(client, rita, drafted):
    response = client.get(report_url(drafted["id"]), **rita)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == ReportStatus.DRAFTED
    assert body["draft_text"] == DRAFT
    assert body["findings"] == "No acute cardiopulmonary abnormality."
    assert body["impression"] == "Normal chest radiograph."
    assert (body["version"], body["attempt"], body["signed_by"]) == (1, 1, None)
    assert set(body["provenance"]) == PROVENANCE_KEYS
    assert body["provenance"]["model_id"] == "tiny"
    assert body["provenance"]["generation_params"] == {"max_new_tokens": 64}
    assert body["provenance"]["generated_tokens"] == 12
    assert body["stream_url"] == f"ws://testserver/ws/reports/{drafted['id']}/"
    read = AuditEvent.objects.filter(description="Report read (API)").last()
    assert (read.username, read.object_id) == ("rita", str(drafted["id"]))


@pytest.mark.django_db
def test_a_study_can_be_read_with_its_report(client, rita, received):
    study_id = Report.objects.get(pk=received["id"]).study_id
    response = client.get(reverse("api-study", kwargs={"study_id": study_id}), **rita)
    assert response.status_code == 200
    assert response.json()["report"]["id"] == received["id"]


@pytest.mark.django_db
def test_an_unknown_report_is_a_json_404(client, rita):
    for response in (
        client.get(report_url(999999), **rita),
        client.post(draft_url(999999), **rita),
        post_json(client, sign_url(999999), {"password": PASSWORD}, rita),
    ):
        assert response.status_code == 404
        assert response.json() == {"error": "Not found."}


# -- drafts ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_requesting_a_draft_queues_it_once(client, rita, received):
    response = client.post(draft_url(received["id"]), **rita)
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["attempt"]) == (ReportStatus.QUEUED, 1)

    again = client.post(draft_url(received["id"]), **rita)
    assert again.status_code == 409
    assert "already in progress" in again.json()["error"]
    report = Report.objects.get(pk=received["id"])
    assert (report.status, report.attempt) == (ReportStatus.QUEUED, 1)


# -- edits ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_edit_with_the_current_version_is_saved_as_the_next_version(client, rita, drafted):
    response = put_json(
        client,
        report_url(drafted["id"]),
        {"findings": "Small right effusion.", "impression": "Effusion.", "version": 1},
        rita,
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["version"], body["findings"], body["impression"]) == (
        2,
        "Small right effusion.",
        "Effusion.",
    )
    assert body["status"] == ReportStatus.IN_REVIEW
    assert client.get(report_url(drafted["id"]), **rita).json()["version"] == 2


@pytest.mark.django_db
def test_an_edit_of_a_stale_version_is_a_conflict_with_the_newer_report(
    client, rita, second_radiologist, drafted
):
    ravi = token_header(second_radiologist)
    first = put_json(
        client, report_url(drafted["id"]), {"findings": "Ravi.", "impression": "R.", "version": 1}, ravi
    )
    assert first.status_code == 200

    response = put_json(
        client, report_url(drafted["id"]), {"findings": "Rita.", "impression": "R.", "version": 1}, rita
    )
    assert response.status_code == 409
    body = response.json()
    assert "error" in body
    assert (body["report"]["version"], body["report"]["findings"]) == (2, "Ravi.")
    assert Report.objects.get(pk=drafted["id"]).findings == "Ravi."


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["{not json", "[1, 2]", "\xff"])
def test_a_body_that_is_not_a_json_object_is_refused(client, rita, drafted, body):
    response = client.put(
        report_url(drafted["id"]), data=body.encode("latin-1"), content_type="application/json", **rita
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]
    sign = client.post(
        sign_url(drafted["id"]), data=body.encode("latin-1"), content_type="application/json", **rita
    )
    assert sign.status_code == 400
    assert Report.objects.get(pk=drafted["id"]).status == ReportStatus.DRAFTED


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"findings": "x"}, {"findings": "x", "version": "one"}])
def test_an_edit_without_a_usable_version_is_refused(client, rita, drafted, body):
    response = put_json(client, report_url(drafted["id"]), body, rita)
    assert response.status_code == 400
    assert Report.objects.get(pk=drafted["id"]).version == 1


# -- sign-off -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_signing_with_a_wrong_password_is_refused(client, rita, drafted):
    response = post_json(client, sign_url(drafted["id"]), {"password": "wrong password"}, rita)
    assert response.status_code == 403
    assert "password" in response.json()["error"]
    report = Report.objects.get(pk=drafted["id"])
    assert (report.status, report.signed_by) == (ReportStatus.DRAFTED, None)


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{}, {"password": 1234}, {"password": PASSWORD, "version": "latest"}])
def test_a_sign_request_without_a_usable_password_or_version_is_refused(client, rita, drafted, body):
    response = post_json(client, sign_url(drafted["id"]), body, rita)
    assert response.status_code == 400
    assert "error" in response.json()
    assert Report.objects.get(pk=drafted["id"]).status == ReportStatus.DRAFTED


@pytest.mark.django_db
def test_a_signed_report_cannot_be_edited_redrafted_or_signed_again(
    client, rita, second_radiologist, drafted
):
    url = report_url(drafted["id"])
    # The AI draft signed at once, unchanged: the proofread asks, and "sign anyway" answers.
    sign = {"password": PASSWORD, "version": 1}
    asked = post_json(client, sign_url(drafted["id"]), sign, rita)
    assert [i["rule"] for i in asked.json()["proofread"]] == ["unchanged_ai_draft"]
    response = post_json(
        client, sign_url(drafted["id"]), {**sign, "sign_anyway": ["unchanged_ai_draft"]}, rita
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["signed_by"]) == (ReportStatus.SIGNED, "rita")
    assert body["signed_at"] is not None

    edit = put_json(client, url, {"findings": "Changed.", "impression": "Changed.", "version": 1}, rita)
    assert edit.status_code == 409
    assert "signed" in edit.json()["error"]
    redraft = client.post(draft_url(drafted["id"]), **rita)
    assert redraft.status_code == 409
    assert "signed" in redraft.json()["error"]
    again = post_json(
        client, sign_url(drafted["id"]), {"password": PASSWORD}, token_header(second_radiologist)
    )
    assert again.status_code == 409
    assert "already signed" in again.json()["error"]

    after = client.get(url, **rita).json()
    assert (after["status"], after["signed_by"], after["version"], after["attempt"]) == (
        ReportStatus.SIGNED,
        "rita",
        1,
        1,
    )
    assert (after["findings"], after["impression"], after["draft_text"]) == (
        "No acute cardiopulmonary abnormality.",
        "Normal chest radiograph.",
        DRAFT,
    )
