"""The report template pages (admins only) and the editor's use of templates, through the
Django test client."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pydicom.uid import generate_uid

from medportal.access.roles import Role
from medportal.audit.models import AuditEvent
from medportal.imaging.models import Patient, Study
from medportal.reporting.models import Report, ReportTemplate
from medportal.reporting.services import drafts
from tests.conftest import make_user

DATA = Path(__file__).parent / "data"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def admin(db):
    return make_user("ada", Role.ADMIN)


@pytest.fixture
def ada(client, admin):
    client.force_login(admin)
    return client


def page(response) -> str:
    return response.content.decode()


def template_events() -> int:
    return AuditEvent.objects.filter(object_type="report_template").count()


def mrrt_upload(name: str, data: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data if data is not None else (DATA / name).read_bytes(), "text/html")


# -- who may use the pages ------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_admins_reach_the_template_pages(client, admin, radiologist, technologist, auditor, outsider):
    template = ReportTemplate.objects.create(
        name="CT head", modality="CT", body_part="HEAD", findings="Normal."
    )
    urls = [
        reverse("template-list"),
        reverse("template-create"),
        reverse("template-import"),
        reverse("template-edit", args=[template.pk]),
    ]
    for user in (radiologist, technologist, auditor, outsider):
        client.force_login(user)
        assert [client.get(url).status_code for url in urls] == [403] * 4, user.username
        assert client.post(reverse("template-delete", args=[template.pk])).status_code == 403
        assert "Report templates" not in page(client.get(reverse("totp-enrol")))  # no menu entry
    client.force_login(admin)
    assert [client.get(url).status_code for url in urls] == [200] * 4
    assert f'href="{reverse("template-list")}">Report templates</a>' in page(
        client.get(reverse("totp-enrol"))
    )
    assert ReportTemplate.objects.filter(pk=template.pk).exists()


# -- list, create, edit ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_admin_creates_a_template_and_finds_it_by_modality(ada):
    response = ada.post(
        reverse("template-create"),
        {
            "name": "CT chest",
            "modality": "ct",
            "body_part": "thorax",
            "has_technique": "on",
            "technique": "Axial CT of the chest.",
            "findings": "The lungs are clear.",
            "impression": "No acute abnormality.",
            "prompt_instruction": "Report lung nodules with their size.",
        },
        follow=True,
    )

    assert "Template “CT chest” created." in page(response)
    template = ReportTemplate.objects.get()
    assert (template.modality, template.body_part, template.has_technique, template.updated_by.username) == (
        "CT",
        "CHEST",
        True,
        "ada",
    )
    ReportTemplate.objects.create(name="MR head", modality="MR", body_part="HEAD", findings="Normal.")
    ct_list = page(ada.get(reverse("template-list"), {"modality": "CT"}))
    assert "CT chest" in ct_list and "Technique, Findings, Impression" in ct_list and "MR head" not in ct_list
    assert "MR head" in page(ada.get(reverse("template-list")))


@pytest.mark.django_db
def test_a_duplicate_or_a_modality_medgemma_does_not_draft_is_refused_with_the_reason(ada):
    ReportTemplate.objects.create(name="CT chest", modality="CT", body_part="CHEST", findings="Normal.")
    before = template_events()

    duplicate = ada.post(
        reverse("template-create"),
        {"name": "Another", "modality": "CT", "body_part": "CHEST", "findings": "x"},
    )
    assert duplicate.status_code == 400
    assert (
        "“CT chest” is already the active template for CT, chest; deactivate it or edit it instead."
        in page(duplicate)
    )
    ultrasound = ada.post(
        reverse("template-create"), {"name": "US abdomen", "modality": "US", "findings": "x"}
    )
    assert ultrasound.status_code == 400
    assert "MedGemma drafts chest X-rays (CR/DX), CT and MR; a template for US would never be used" in page(
        ultrasound
    )
    assert ReportTemplate.objects.count() == 1 and template_events() == before


@pytest.mark.django_db
def test_an_admin_edits_a_template(ada):
    template = ReportTemplate.objects.create(
        name="MR head", modality="MR", body_part="HEAD", findings="Normal."
    )
    form = page(ada.get(reverse("template-edit", args=[template.pk])))
    assert 'value="MR head"' in form and "Normal.</textarea>" in form

    response = ada.post(
        reverse("template-edit", args=[template.pk]),
        {"name": "MR brain", "modality": "MR", "body_part": "BRAIN", "findings": "No acute infarct."},
    )

    assert response.status_code == 302
    template.refresh_from_db()
    assert (template.name, template.body_part, template.findings) == (
        "MR brain",
        "BRAIN",
        "No acute infarct.",
    )
    assert AuditEvent.objects.filter(description="Report template changed: MR brain").exists()


@pytest.mark.django_db
def test_deactivating_and_deleting_from_the_pages(ada, radiologist):
    used = ReportTemplate.objects.create(name="CT head", modality="CT", body_part="HEAD", findings="Normal.")
    unused = ReportTemplate.objects.create(
        name="MR knee", modality="MR", body_part="KNEE", findings="Normal."
    )
    patient = Patient.objects.create(patient_id="MRN-P", name="Page Patient")
    study = Study.objects.create(study_uid=generate_uid(), patient=patient, modality="CT", body_part="HEAD")
    Report.objects.filter(pk=drafts.report_for_study(study=study).pk).update(template=used)

    refused = ada.post(reverse("template-delete", args=[used.pk]))
    assert refused.status_code == 409
    assert "“CT head” was used by 1 report, which must keep it on record; deactivate it instead." in page(
        refused
    )
    assert 'id="template-delete"' not in page(ada.get(reverse("template-edit", args=[used.pk])))

    ada.post(reverse("template-set-active", args=[used.pk]), {"active": "false"})
    listed = page(ada.get(reverse("template-list")))
    assert f'<tr id="template-{used.pk}" class="inactive">' in listed
    assert ada.post(reverse("template-set-active", args=[used.pk])).status_code == 400  # says neither

    assert ada.post(reverse("template-delete", args=[unused.pk])).status_code == 302
    assert list(ReportTemplate.objects.values_list("name", "active")) == [("CT head", False)]


# -- IHE MRRT import ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_importing_a_radreport_style_template(ada):
    response = ada.post(
        reverse("template-import"),
        {"file": mrrt_upload("mrrt_chest_radiograph.html"), "modality": "DX", "body_part": ""},
        follow=True,
    )

    text = page(response)
    template = ReportTemplate.objects.get()
    assert response.redirect_chain == [(reverse("template-edit", args=[template.pk]), 302)]
    assert (
        "Imported “Chest radiograph, 2 views” (DX, chest): Procedure, Comparison, Findings, Impression. "
        "Left out: Clinical information"
    ) in text
    assert "[Heart size: normal/enlarged]" in text  # the findings, in the edit form
    assert (template.source, template.source_id) == ("mrrt", "urn:medportal:test:mrrt:cxr-2v")


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("huge.html", b"<html>" + b" " * (1024 * 1024 + 1), "may be at most 1024 KB"),
        ("scan.html", b"\x00\x01\x02binary", "the file is binary, not HTML text"),
        ("notes.html", b"Findings: normal. Impression: normal.", "it is not an HTML file"),
        ("page.html", b"<html><body><p>Hello</p></body></html>", "This template has no report sections"),
        ("mrrt_chest_radiograph.html", None, "coded for CR or DX (projection radiography); choose"),
    ],
    ids=["too-large", "binary", "not-html", "no-sections", "modality-unsettled"],
)
@pytest.mark.django_db
def test_an_import_that_cannot_be_used_says_why_and_stores_nothing(ada, name, data, says):
    response = ada.post(reverse("template-import"), {"file": mrrt_upload(name, data)})

    assert response.status_code == 400
    assert says in page(response) and "Nothing was stored." in page(response)
    assert not ReportTemplate.objects.exists() and template_events() == 0


# -- the editor -----------------------------------------------------------------------------------


def ct_head_study() -> Study:
    patient = Patient.objects.create(patient_id="MRN-E", name="Editor Patient")
    return Study.objects.create(study_uid=generate_uid(), patient=patient, modality="CT", body_part="HEAD")


@pytest.mark.django_db
def test_a_report_written_by_hand_starts_from_the_templates_normal_text(client, radiologist):
    ReportTemplate.objects.create(
        name="CT head normal",
        modality="CT",
        body_part="HEAD",
        has_technique=True,
        technique="Axial CT without contrast.",
        findings="No intracranial hemorrhage.",
        impression="Normal CT head.",
    )
    study = ct_head_study()
    client.force_login(radiologist)

    text = page(client.get(reverse("study-detail", args=[study.pk])))

    assert "Started from the normal text of the template “CT head normal”" in text
    assert 'name="technique"' in text and "Axial CT without contrast.</textarea>" in text
    assert "No intracranial hemorrhage.</textarea>" in text and "Normal CT head.</textarea>" in text
    assert 'name="comparison"' not in text  # the template has no Comparison
    report = Report.objects.get(study=study)
    assert (report.version, report.findings) == (0, "")  # nothing stored until saved

    client.post(
        reverse("report-save", args=[report.pk]),
        {
            "technique": "Axial CT without contrast.",
            "findings": "No intracranial hemorrhage.",
            "impression": "Normal CT head.",
            "version": 0,
        },
        **HTMX,
    )
    report.refresh_from_db()
    assert (report.technique, report.findings, report.version) == (
        "Axial CT without contrast.",
        "No intracranial hemorrhage.",
        1,
    )
    # Saved text is the radiologist's: the normal text no longer replaces it.
    client.post(
        reverse("report-save", args=[report.pk]),
        {"findings": "Small subdural hematoma.", "impression": "Subdural hematoma.", "version": 1},
        **HTMX,
    )
    report.refresh_from_db()
    assert report.technique == "Axial CT without contrast."  # not in the form: kept
    text = page(client.get(reverse("study-detail", args=[study.pk])))
    assert "Started from the normal text" not in text and "Small subdural hematoma.</textarea>" in text


@pytest.mark.django_db
def test_without_a_template_the_editor_has_findings_and_impression_only(client, radiologist):
    ReportTemplate.objects.create(name="CR chest", modality="CR", body_part="CHEST", findings="Clear lungs.")
    study = ct_head_study()
    client.force_login(radiologist)

    text = page(client.get(reverse("study-detail", args=[study.pk])))

    assert 'name="findings"' in text and 'name="technique"' not in text
    assert "Clear lungs." not in text and "Started from the normal text" not in text
