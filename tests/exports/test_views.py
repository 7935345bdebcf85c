"""Downloads from the study page and the API: who gets what, the refusal of unsigned reports,
and the audit event each download leaves."""

from __future__ import annotations

import io
import json

import pydicom
import pytest
from django.urls import reverse

from medportal.audit.models import Action, AuditEvent, EventType, Outcome
from tests.conftest import token_header
from tests.exports.conftest import CT_MRN, CT_STUDY_UID, FINDINGS, pdf_text, received_report

FORMATS = {
    "report-export-pdf": ("application/pdf", "report-{id}.pdf"),
    "report-export-fhir": ("application/fhir+json", "report-{id}-fhir.json"),
    "report-export-sr": ("application/dicom", "report-{id}-sr.dcm"),
}


@pytest.mark.parametrize("route", sorted(FORMATS))
def test_a_radiologist_downloads_each_format_and_the_download_is_audited(route, client, rita, signed_report):
    client.force_login(rita)

    response = client.get(reverse(route, args=[signed_report.pk]))

    content_type, filename = FORMATS[route]
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{filename.format(id=signed_report.pk)}"'
    assert response["Cache-Control"] == "no-store"
    event = AuditEvent.objects.filter(event_type=EventType.EXPORT).get()
    assert (event.action, event.outcome, event.username) == (Action.READ, Outcome.SUCCESS, "rita")
    assert (event.patient_id, event.study_uid) == (CT_MRN, CT_STUDY_UID)
    assert (event.object_type, event.object_id) == ("report", str(signed_report.pk))
    assert event.detail["format"] == route.rsplit("-", 1)[1]


def test_the_downloads_hold_the_signed_text(client, rita, signed_report):
    client.force_login(rita)

    pdf = client.get(reverse("report-export-pdf", args=[signed_report.pk])).content
    bundle = json.loads(client.get(reverse("report-export-fhir", args=[signed_report.pk])).content)
    sr = pydicom.dcmread(io.BytesIO(client.get(reverse("report-export-sr", args=[signed_report.pk])).content))

    assert FINDINGS in pdf_text(pdf)
    assert bundle["entry"][0]["resource"]["conclusion"] == signed_report.impression
    assert sr.StudyInstanceUID == CT_STUDY_UID
    sop = AuditEvent.objects.get(event_type=EventType.EXPORT, detail__format="sr").detail["sop_instance_uid"]
    assert sop == sr.SOPInstanceUID


@pytest.mark.parametrize("route", sorted(FORMATS))
def test_an_unsigned_report_is_refused_with_409_and_a_reason_and_the_refusal_is_audited(route, client, rita):
    report = received_report(rita)
    client.force_login(rita)

    response = client.get(reverse(route, args=[report.pk]))

    assert response.status_code == 409
    assert "Only a signed report can be exported; this one is awaiting draft." in response.content.decode()
    event = AuditEvent.objects.get(event_type=EventType.EXPORT)
    assert event.outcome == Outcome.MINOR_FAILURE
    assert event.study_uid == CT_STUDY_UID and event.object_id == str(report.pk)


def test_the_api_gives_fhir_json_to_a_token(client, rita, signed_report):
    response = client.get(reverse("api-report-fhir", args=[signed_report.pk]), **token_header(rita))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    bundle = json.loads(response.content)
    assert bundle["resourceType"] == "Bundle"
    assert AuditEvent.objects.get(event_type=EventType.EXPORT).detail["format"] == "fhir"


@pytest.mark.parametrize("route", ["api-report-fhir", "api-report-pdf", "api-report-sr"])
def test_the_api_refuses_an_unsigned_report_with_409_json(route, client, rita):
    report = received_report(rita)

    response = client.get(reverse(route, args=[report.pk]), **token_header(rita))

    assert response.status_code == 409
    assert response.json() == {"error": "Only a signed report can be exported; this one is awaiting draft."}


def test_the_api_pdf_and_sr_are_the_same_files_as_the_page_ones(client, rita, signed_report):
    sr = client.get(reverse("api-report-sr", args=[signed_report.pk]), **token_header(rita))
    pdf = client.get(reverse("api-report-pdf", args=[signed_report.pk]), **token_header(rita))

    assert pydicom.dcmread(io.BytesIO(sr.content)).Modality == "SR"
    assert pdf.content.startswith(b"%PDF-")


def test_the_signed_report_panel_offers_the_downloads_to_a_radiologist(client, rita, signed_report):
    client.force_login(rita)

    page = client.get(reverse("study-detail", args=[signed_report.study_id])).content.decode()

    for route in FORMATS:
        assert f'href="{reverse(route, args=[signed_report.pk])}"' in page
    assert "Send to PACS" not in page  # no PACS configured


def test_send_to_pacs_is_offered_where_a_pacs_is_configured(client, rita, signed_report, settings):
    settings.MEDPORTAL_PACS_HOST = "pacs.example"
    client.force_login(rita)

    page = client.get(reverse("study-detail", args=[signed_report.study_id])).content.decode()

    assert f'action="{reverse("report-send-pacs", args=[signed_report.pk])}"' in page
    assert 'title="DICOM AE PACS at pacs.example:104"' in page


def test_a_technologist_sees_no_downloads_and_is_refused_them(client, technologist, signed_report):
    client.force_login(technologist)

    page = client.get(reverse("study-detail", args=[signed_report.study_id])).content.decode()
    response = client.get(reverse("report-export-pdf", args=[signed_report.pk]))

    assert FINDINGS in page  # the report itself is shown
    assert "report-exports" not in page
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(event_type=EventType.EXPORT).exists()


def test_an_unsigned_report_panel_has_no_downloads(client, rita):
    report = received_report(rita)
    client.force_login(rita)

    page = client.get(reverse("study-detail", args=[report.study_id])).content.decode()

    assert reverse("report-export-pdf", args=[report.pk]) not in page
