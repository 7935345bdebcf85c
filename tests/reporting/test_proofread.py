"""The proofread before a sign-off: every rule of the table both ways, then the Sign button
and the API holding a signature until each finding is fixed or answered with "sign anyway"."""

from __future__ import annotations

import io
import json

import pydicom
import pytest
from django.urls import reverse
from pydicom.data import get_testdata_file

from medportal.audit.models import AuditEvent
from medportal.imaging.ingest import IncomingFile
from medportal.intake.receive import studies_receive
from medportal.reporting import proofread
from medportal.reporting.models import ReportStatus
from medportal.reporting.proofread import RULES, ReportText, text_proofread
from medportal.reporting.services import editing
from tests.conftest import PASSWORD, token_header
from tests.reporting.test_services import drafted, new_report, reload

HTMX = {"HTTP_HX_REQUEST": "true"}


def text(findings: str = "Normal.", impression: str = "Normal.", **facts) -> ReportText:
    defaults = {"study_sides": frozenset(), "patient_sex": "", "ai_text": None, "seconds_since_draft": None}
    return ReportText(findings=findings, impression=impression, **{**defaults, **facts})


def codes(report_text: ReportText) -> list[str]:
    return [issue.code for issue in text_proofread(report_text)]


# (rule, text it flags, text it lets pass): each rule is tested both ways.
CASES = {
    "laterality_study": (
        text("Effusion in the right knee joint.", "Right knee effusion.", study_sides=frozenset({"left"})),
        text("Effusion in the left knee joint.", "Left knee effusion.", study_sides=frozenset({"left"})),
    ),
    "laterality_sections": (
        text("A 6 mm nodule in the right upper lobe.", "Left upper lobe nodule, 6 mm."),
        text("A 6 mm nodule in the right upper lobe.", "Right upper lobe nodule, 6 mm."),
    ),
    "sex_organ": (
        text("The uterus is unremarkable.", "Normal pelvis.", patient_sex="M"),
        text("The prostate is unremarkable.", "Normal pelvis.", patient_sex="M"),
    ),
    "placeholder": (
        text("Heart size: [normal/enlarged].", "Normal."),
        text("Heart size is normal.", "Normal."),
    ),
    "empty_impression": (text("The lungs are clear.", "  "), text("The lungs are clear.", "Normal.")),
    "impression_only_finding": (
        text("The lungs are clear. No effusion.", "Small pneumothorax."),
        text("The lungs are clear. No effusion.", "No pneumothorax. Normal chest."),
    ),
    "measurement_mismatch": (
        text("A 6 mm nodule in the right upper lobe.", "Right upper lobe nodule, 8 mm."),
        text("A 0.6 cm nodule in the right upper lobe.", "Right upper lobe nodule, 6 mm."),
    ),
    "unchanged_ai_draft": (
        text("Clear.", "Normal.", ai_text=("Clear.", "Normal."), seconds_since_draft=5),
        text("Clear.", "Normal.", ai_text=("Clear.", "Normal."), seconds_since_draft=600),
    ),
}


def test_every_rule_of_the_table_has_its_cases():
    assert {code for code, _, _ in RULES} == set(CASES)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_rule_flags_what_it_is_about_and_passes_what_is_right(rule, settings):
    settings.MEDPORTAL_PROOFREAD_UNCHANGED_SECONDS = 60
    flagged, passing = CASES[rule]
    assert rule in codes(flagged)
    assert rule not in codes(passing)


def test_the_other_sex_and_an_unknown_sex_are_held_to_their_own_organs():
    assert codes(text("The prostate is enlarged.", "Enlarged prostate.", patient_sex="F")) == ["sex_organ"]
    assert codes(text("The prostate is enlarged.", "Enlarged prostate.", patient_sex="")) == []
    # "cervical" is the spine too; only "cervix" is the organ.
    assert codes(text("Cervical spine alignment is normal.", "Normal.", patient_sex="M")) == []


def test_a_clean_report_has_nothing_to_check():
    report_text = text(
        "A 6 mm nodule in the right upper lobe. No effusion.",
        "Right upper lobe nodule, 6 mm; CT chest in 3 months.",
        study_sides=frozenset({"right", "left"}),
        patient_sex="F",
    )
    assert text_proofread(report_text) == []


def test_an_edited_ai_draft_is_not_the_ai_draft_unchanged():
    report_text = text("Clear lungs.", "Normal.", ai_text=("Clear.", "Normal."), seconds_since_draft=5)
    assert "unchanged_ai_draft" not in codes(report_text)


# -- the study's side ------------------------------------------------------------------------


def test_the_study_side_comes_from_the_dicom_header_and_the_description(db, image_store, radiologist):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.Laterality = "L"
    buffer = io.BytesIO()
    ds.save_as(buffer)
    _, reports = studies_receive(
        files=[IncomingFile("left.dcm", buffer.getvalue())], uploader=radiologist, auto_draft=False
    )
    assert proofread.study_sides(reports[0].study) == {"left"}
    study = new_report().study
    study.description = "XR RT KNEE 3 VIEWS"
    assert proofread.study_sides(study) == {"right"}


# -- the Sign button -------------------------------------------------------------------------


@pytest.fixture
def rita(client, radiologist):
    client.force_login(radiologist)
    return client


def written(radiologist, findings: str, impression: str):
    report = drafted(new_report(), radiologist)
    return editing.report_save(
        report=report,
        user=radiologist,
        findings=findings,
        impression=impression,
        expected_version=report.version,
    )


def sign(client, report, **extra):
    data = {"password": PASSWORD, "version": report.version, **extra}
    return client.post(reverse("report-sign", args=[report.pk]), data, **HTMX)


def descriptions(report) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="report", object_id=str(report.pk)).values_list(
            "description", flat=True
        )
    )


def test_sign_shows_the_findings_beside_the_button_and_signs_nothing(rita, radiologist):
    report = written(radiologist, "A 6 mm nodule in the right upper lobe.", "")
    response = sign(rita, report)
    assert response.status_code == 409
    html = response.content.decode()
    assert 'id="proofread-empty_impression"' in html and "The Impression is empty." in html
    assert 'name="sign_anyway" value="empty_impression"' in html
    assert reload(report).status == ReportStatus.IN_REVIEW
    assert "Proofread before sign-off: findings shown" in descriptions(report)


def test_sign_anyway_on_every_finding_signs_and_is_recorded(rita, radiologist):
    report = written(radiologist, "Heart size: [normal/enlarged].", "")
    response = sign(rita, report, sign_anyway=["empty_impression"])
    assert response.status_code == 409  # the placeholder is still unanswered
    assert "proofread-placeholder" in response.content.decode()
    assert "proofread-empty_impression" not in response.content.decode()
    response = sign(rita, reload(report), sign_anyway=["empty_impression", "placeholder"])
    assert response.status_code == 200
    assert reload(report).status == ReportStatus.SIGNED
    event = AuditEvent.objects.get(description="Proofread before sign-off: sign anyway chosen")
    assert sorted(i["rule"] for i in event.detail["issues"]) == ["empty_impression", "placeholder"]


def test_fix_is_recorded_and_a_fixed_report_signs_without_a_question(rita, radiologist):
    report = written(radiologist, "A 6 mm nodule in the right upper lobe.", "Left upper lobe nodule.")
    assert "proofread-laterality_sections" in sign(rita, report).content.decode()
    response = rita.post(reverse("report-proofread-fix", args=[report.pk]), {"rule": "laterality_sections"})
    assert response.status_code == 204
    assert "Proofread before sign-off: fix chosen" in descriptions(report)
    assert (
        rita.post(reverse("report-proofread-fix", args=[report.pk]), {"rule": "nonsense"}).status_code == 400
    )
    report = editing.report_save(
        report=report,
        user=radiologist,
        findings=report.findings,
        impression="Right upper lobe nodule, 6 mm.",
        expected_version=report.version,
    )
    assert sign(rita, report).status_code == 200
    assert reload(report).status == ReportStatus.SIGNED


def test_without_javascript_the_whole_page_shows_the_findings(rita, radiologist):
    report = written(radiologist, "Clear.", "")
    response = rita.post(
        reverse("report-sign", args=[report.pk]), {"password": PASSWORD, "version": report.version}
    )
    assert response.status_code == 409
    assert "<h1>" in response.content.decode() and "The Impression is empty." in response.content.decode()


# -- the API ---------------------------------------------------------------------------------


def test_the_api_reads_the_findings_and_signs_only_with_sign_anyway(client, radiologist):
    report = written(radiologist, "The uterus is normal.", "Normal pelvis.")
    report.study.patient.sex = "M"
    report.study.patient.save()
    headers = token_header(radiologist)
    found = client.get(reverse("api-report-proofread", args=[report.pk]), **headers).json()["proofread"]
    assert [i["rule"] for i in found] == ["sex_organ"]
    url = reverse("api-report-sign", args=[report.pk])
    body = {"password": PASSWORD, "version": report.version}
    refused = client.post(url, json.dumps(body), content_type="application/json", **headers)
    assert refused.status_code == 409
    assert [i["rule"] for i in refused.json()["proofread"]] == ["sex_organ"]
    assert reload(report).status == ReportStatus.IN_REVIEW
    body["sign_anyway"] = ["sex_organ"]
    signed = client.post(url, json.dumps(body), content_type="application/json", **headers)
    assert signed.status_code == 200, signed.content
    assert reload(report).status == ReportStatus.SIGNED
