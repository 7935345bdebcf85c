"""A signed report is frozen whole: every writing route and API, and edits of the patient, study,
signer and settings rows after the signature, leave everything its outputs show (PDF, FHIR,
DICOM SR and so Send to PACS, HL7, the API) as it was signed."""

from __future__ import annotations

import datetime
import io
import json

import pydicom
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from pydicom.uid import generate_uid

from medportal.access.roles import Role
from medportal.audit.models import AuditEvent
from medportal.exports import dicom_sr, fhir
from medportal.exports.content import signed_report
from medportal.hl7.message import oru_r01
from medportal.imaging.models import Patient, Study
from medportal.reporting.freezing import signed_snapshot
from medportal.reporting.models import Report, SignedContent
from tests.accounts.test_route_matrix import RULES
from tests.conftest import PASSWORD, dicom_bytes, make_user, token_header
from tests.exports.conftest import CT_MRN, FINDINGS, IMPRESSION

FIXED = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
# Set by the SR builder at each build, not part of what the report says.
SR_VOLATILE = {
    "00080012",
    "00080013",
    "0018A001",
}  # Instance Creation Date, Time; Contributing Equipment (when)


def outputs(client, report: Report, headers: dict) -> dict:
    """Everything the signed report's outputs show, with the build time fixed."""
    content = signed_report(report)
    bundle = fhir.report_fhir_bundle(content)
    bundle.pop("timestamp")
    sr = dicom_sr.report_sr(content).to_json_dict()
    api_report = client.get(reverse("api-report", args=[report.pk]), **headers).json()
    api_study = client.get(reverse("api-study", args=[report.study_id]), **headers).json()
    return {
        "pdf": render_to_string("exports/report_pdf.html", {"c": content, "printed_at": FIXED}),
        "fhir": bundle,
        "sr": {tag: value for tag, value in sr.items() if tag not in SR_VOLATILE},
        "hl7": oru_r01(
            signed=signed_snapshot(report.pk, up_to_addendum=0), control_id="C1", created_at=FIXED
        ),
        "api_report": {k: v for k, v in api_report.items() if k != "status"},
        "api_study": {k: v for k, v in api_study.items() if k != "report"},
    }


def another_instance_of(study_uid: str) -> bytes:
    """CT_small.dcm as a new instance in a new series of the signed study."""
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes("CT_small.dcm")))
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName = "Renamed^Patient"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def stow_body(data: bytes) -> tuple[bytes, str]:
    boundary = "frozenboundary"
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def writes(report: Report, ada: User, rita: User) -> dict:
    """One request per writing route (route name -> (kind, method, url, data)): the pages as an
    admin who is also a radiologist, the API with a token."""
    r, s = report.pk, report.study_id
    new = another_instance_of(report.study.study_uid)
    stow, stow_type = stow_body(another_instance_of(report.study.study_uid))
    return {
        "sample-load": ("page", "post", reverse("sample-load"), {}),
        "study-indication": (
            "page",
            "post",
            reverse("study-indication", args=[s]),
            {"indication": "Changed."},
        ),
        "report-draft": ("page", "post", reverse("report-draft", args=[r]), {"instruction": "be brief"}),
        "report-save": (
            "page",
            "post",
            reverse("report-save", args=[r]),
            {"findings": "Forged.", "impression": "Forged.", "technique": "T", "version": report.version},
        ),
        "report-sign": (
            "page",
            "post",
            reverse("report-sign", args=[r]),
            {"password": PASSWORD, "version": 1},
        ),
        "report-addendum": (
            "page",
            "post",
            reverse("report-addendum", args=[r]),
            {"text": "Not signed: wrong password.", "password": "wrong password"},
        ),
        "report-cancel": (
            "page",
            "post",
            reverse("report-cancel", args=[r]),
            {"reason": "Ordered in error."},
        ),
        "report-claim": ("page", "post", reverse("report-claim", args=[r]), {}),
        "report-release": ("page", "post", reverse("report-release", args=[r]), {}),
        "report-assign": ("page", "post", reverse("report-assign", args=[r]), {"assignee": rita.pk}),
        "report-send-pacs": ("page", "post", reverse("report-send-pacs", args=[r]), {}),
        "worklist-next": ("page", "post", reverse("worklist-next"), {}),
        "template-create": (
            "page",
            "post",
            reverse("template-create"),
            {"name": "CT chest", "modality": "CT", "findings": "Normal.", "impression": "Normal."},
        ),
        "template-import": ("page", "post", reverse("template-import"), {}),
        "template-edit": ("page", "post", reverse("template-edit", args=[1]), {"name": "Renamed"}),
        "template-set-active": (
            "page",
            "post",
            reverse("template-set-active", args=[1]),
            {"active": "false"},
        ),
        "template-delete": ("page", "post", reverse("template-delete", args=[1]), {}),
        "hl7-outbox-resend": ("page", "post", reverse("hl7-outbox-resend", args=[1]), {}),
        "api-studies": ("api", "post", reverse("api-studies"), {"files": io.BytesIO(new)}),
        "dicomweb-studies": ("stow", "post", reverse("dicomweb-studies"), (stow, stow_type)),
        "api-report": (
            "json",
            "put",
            reverse("api-report", args=[r]),
            {"findings": "Forged.", "impression": "Forged.", "version": report.version},
        ),
        "api-report-draft": ("json", "post", reverse("api-report-draft", args=[r]), {}),
        "api-report-sign": ("json", "post", reverse("api-report-sign", args=[r]), {"password": PASSWORD}),
        "study-body-part": ("page", "post", reverse("study-body-part", args=[s]), {"body_part": "KNEE"}),
        "report-prior": ("page", "post", reverse("report-prior", args=[r]), {"prior": "none"}),
        "report-proofread-fix": (
            "page",
            "post",
            reverse("report-proofread-fix", args=[r]),
            {"rule": "empty_impression"},
        ),
        "critical-mark": (
            "page",
            "post",
            reverse("critical-mark", args=[r]),
            {"category": settings.MEDPORTAL_CRITICAL_CATEGORIES[0], "finding": "Forged critical finding."},
        ),
        "critical-notify": ("page", "post", reverse("critical-notify", args=[1]), {"recipient": "Dr X"}),
        "critical-read-back": ("page", "post", reverse("critical-read-back", args=[1]), {}),
        "followup-confirm": ("page", "post", reverse("followup-confirm", args=[r]), {}),
        "user-new": (
            "page",
            "post",
            reverse("user-new"),
            {"username": "newbie", "password": "a far from simple phrase", "roles": ["radiologist"]},
        ),
        "user-edit": (
            "page",
            "post",
            reverse("user-edit", args=[rita.pk]),
            {"first_name": "Renamed", "last_name": "Signer", "roles": ["radiologist"]},
        ),
        "user-password": (
            "page",
            "post",
            reverse("user-password", args=[rita.pk]),
            {"password": "another far from simple phrase"},
        ),
        "user-active": ("page", "post", reverse("user-active", args=[rita.pk]), {"active": "false"}),
        "logout": ("page", "post", reverse("logout"), {}),  # last: it ends the session
    }


@pytest.mark.django_db
def test_no_writing_route_and_no_later_edit_changes_what_a_signed_report_shows(client, signed_report, rita):
    ada = make_user("ada", Role.ADMIN, Role.RADIOLOGIST, superuser=True)
    headers = token_header(ada)
    report = Report.objects.select_related("study").get(pk=signed_report.pk)
    before = outputs(client, report, headers)
    assert FINDINGS in before["pdf"] and before["api_report"]["impression"] == IMPRESSION

    requests = writes(report, ada, rita)
    written = {name for name, (method, _, _) in RULES.items() if method != "GET"} | {"api-report"}
    assert written - set(requests) == set(), "a writing route this test does not try"
    client.force_login(ada)
    for name, (kind, method, url, data) in requests.items():
        if kind == "page":
            response = getattr(client, method)(url, data)
        elif kind == "api":
            response = client.post(url, data, **headers)
        elif kind == "stow":
            response = client.post(url, data[0], content_type=data[1], **headers)
        else:
            response = getattr(client, method)(
                url, json.dumps(data), content_type="application/json", **headers
            )
        assert response.status_code < 500, (name, response.status_code)

    # The rows the report was signed on, edited after the signature (as the admin site could).
    Patient.objects.filter(patient_id=CT_MRN).update(name="Other^Name", birth_date="19990101", sex="M")
    Study.objects.filter(pk=report.study_id).update(
        description="Edited", accession_number="ACC-EDIT", modality="MR", indication="Edited later."
    )
    User.objects.filter(pk=rita.pk).update(first_name="Renamed", last_name="Signer", username="rita2")
    with pytest.MonkeyPatch.context() as patch:
        from django.conf import settings

        patch.setattr(settings, "MEDPORTAL_INSTITUTION_NAME", "Another Hospital")
        after = outputs(client, report, headers)
    assert Study.objects.get(pk=report.study_id).series.count() == 3  # the new instances did arrive
    for name in before:
        assert after[name] == before[name], name
    assert Report.objects.get(pk=report.pk).status == "signed"


@pytest.mark.django_db
def test_the_database_refuses_to_change_or_delete_a_frozen_signature(signed_report):
    row = SignedContent.objects.get(report=signed_report, addendum=None)
    for statement in (
        "UPDATE reporting_signedcontent SET content = replace(content, 'nodule', 'cyst') WHERE id = %s",
        "DELETE FROM reporting_signedcontent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as c:
            c.execute(statement, [row.pk])
    assert SignedContent.objects.get(pk=row.pk).content == row.content


def forge(statement: str, params) -> None:
    """As the tables' owner could: guards lifted."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE reporting_signedcontent DISABLE TRIGGER USER")
        cursor.execute(statement, params)


@pytest.mark.django_db
def test_audit_verify_checks_every_signed_report_against_its_signature(signed_report, rita):
    call_command("audit_verify")
    event = AuditEvent.objects.get(object_id=str(signed_report.pk), description="Report signed")
    row = SignedContent.objects.get(report=signed_report, addendum=None)
    assert event.detail["content_sha256"] == row.sha256

    sid = transaction.savepoint()
    forge(
        "UPDATE reporting_signedcontent SET content = replace(content, 'nodule', 'cyst') WHERE id = %s",
        [row.pk],
    )
    with pytest.raises(
        CommandError, match=f"report {signed_report.pk}: its frozen content does not match its hash"
    ):
        call_command("audit_verify")
    transaction.savepoint_rollback(sid)

    # Content and its hash column replaced together: the signature's audit event still holds the old hash.
    sid = transaction.savepoint()
    forged = row.content.replace("nodule", "cyst")
    import hashlib

    forge(
        "UPDATE reporting_signedcontent SET content = %s, sha256 = %s WHERE id = %s",
        [forged, hashlib.sha256(forged.encode()).hexdigest(), row.pk],
    )
    with pytest.raises(CommandError, match="not the one its signature's audit event recorded"):
        call_command("audit_verify")
    transaction.savepoint_rollback(sid)


@pytest.mark.django_db
def test_the_indication_cannot_be_saved_once_signed_and_the_page_does_not_offer_it(
    client, signed_report, rita
):
    client.force_login(rita)
    page = client.get(reverse("study-detail", args=[signed_report.study_id])).content.decode()
    assert (
        "Save indication" not in page
        and reverse("study-indication", args=[signed_report.study_id]) not in page
    )
    response = client.post(
        reverse("study-indication", args=[signed_report.study_id]), {"indication": "Changed."}, follow=True
    )
    assert "This report is signed; corrections are addenda." in response.content.decode()
    assert Study.objects.get(pk=signed_report.study_id).indication != "Changed."
    refusal = AuditEvent.objects.filter(object_id=str(signed_report.pk), outcome=4).latest("seq")
    assert refusal.description.startswith("Clinical indication edit refused")


@pytest.mark.django_db
def test_signing_on_the_page_replaces_the_indication_form_at_once(client, rita):
    from tests.exports.conftest import drafted, received_report

    report = drafted(received_report(rita), rita)
    client.force_login(rita)
    page = client.get(reverse("study-detail", args=[report.study_id])).content.decode()
    assert "Save indication" in page
    response = client.post(
        reverse("report-sign", args=[report.pk]),
        # Signed at once, the AI draft unchanged: the proofread asks, and the radiologist signs anyway.
        {"password": PASSWORD, "version": report.version, "sign_anyway": ["unchanged_ai_draft"]},
        HTTP_HX_REQUEST="true",
    )
    panel = response.content.decode()
    assert 'id="indication-block" hx-swap-oob="true"' in panel and "Save indication" not in panel
