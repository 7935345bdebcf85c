"""Report templates through medportal.reporting.report_templates.library: which template a study gets,
what an admin may store, what is audited, and the draft's sections from its template."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from pydicom.uid import generate_uid

from medportal.access.roles import Role
from medportal.audit.models import Action, AuditEvent, EventType
from medportal.imaging.models import Patient, Study
from medportal.reporting.models import Report, ReportTemplate
from medportal.reporting.report_templates.library import (
    TemplateError,
    template_create,
    template_delete,
    template_for_study,
    template_import_mrrt,
    template_set_active,
    template_update,
)
from medportal.reporting.report_templates.mrrt import MrrtError
from medportal.reporting.services import drafts
from medportal.reporting.services.drafts import DraftProvenance
from tests.conftest import make_user

DATA = Path(__file__).parent / "data"


@pytest.fixture
def admin(db):
    return make_user("ada", Role.ADMIN)


def make(name: str, modality: str, body_part: str = "", **fields) -> ReportTemplate:
    return ReportTemplate.objects.create(
        name=name, modality=modality, body_part=body_part, findings=f"{name} normal.", **fields
    )


def template_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(object_type="report_template").order_by("id"))


# -- which template a study gets --------------------------------------------------------------


@pytest.mark.django_db
def test_the_most_specific_active_template_wins():
    ct_any = make("CT, any body part", "CT")
    ct_chest = make("CT chest", "CT", "CHEST")
    any_chest = make("Chest, any modality", "", "CHEST")

    assert template_for_study(modality="CT", body_part="CHEST") == ct_chest
    assert template_for_study(modality="ct", body_part="thorax") == ct_chest  # THORAX is the chest
    assert template_for_study(modality="CT", body_part="HEAD") == ct_any
    assert template_for_study(modality="CT", body_part="") == ct_any
    assert template_for_study(modality="MR", body_part="CHEST") == any_chest
    assert template_for_study(modality="MR", body_part="HEAD") is None

    ct_chest.active = False
    ct_chest.save()
    assert template_for_study(modality="CT", body_part="CHEST") == ct_any


@pytest.mark.django_db
def test_a_ct_never_gets_a_chest_x_ray_template():
    cr_chest = make(
        "Chest radiograph", "CR", "CHEST", prompt_instruction="Comment on the costophrenic angles."
    )

    assert template_for_study(modality="CT", body_part="CHEST") is None
    assert template_for_study(modality="DX", body_part="CHEST") is None  # a CR template is for CR
    assert template_for_study(modality="CR", body_part="CHEST") == cr_chest
    # A radiograph without a body part is not assumed to be a chest (medportal.imaging.body_part):
    # the worker drafts it only once its body part is known, with that body part's template.
    assert template_for_study(modality="CR", body_part="") is None


@pytest.mark.django_db
def test_studies_medgemma_does_not_draft_get_no_template():
    make("Any study", "")

    assert template_for_study(modality="US", body_part="ABDOMEN") is None
    assert template_for_study(modality="CR", body_part="KNEE") is None
    assert template_for_study(modality="", body_part="") is None
    assert template_for_study(modality="MR", body_part="KNEE").name == "Any study"


# -- what an admin may store --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_second_active_template_for_the_same_modality_and_body_part_is_refused(admin):
    first = template_create(user=admin, name="CT chest", modality="ct", body_part="chest", findings="Normal.")
    assert (first.modality, first.body_part, first.source, first.active) == ("CT", "CHEST", "local", True)

    with pytest.raises(TemplateError, match="“CT chest” is already the active template for CT, chest"):
        template_create(user=admin, name="CT thorax", modality="CT", body_part="THORAX", findings="Normal.")
    assert ReportTemplate.objects.count() == 1

    # Once the first is inactive, the second may be active; the first cannot come back beside it.
    template_set_active(template=first, active=False, user=admin)
    second = template_create(user=admin, name="CT thorax", modality="CT", body_part="THORAX", findings="New.")
    assert second.body_part == "CHEST"
    with pytest.raises(TemplateError, match="already the active template"):
        template_set_active(template=first, active=True, user=admin)
    assert not ReportTemplate.objects.get(pk=first.pk).active


@pytest.mark.django_db
def test_the_database_keeps_one_active_template_per_modality_and_body_part():
    make("One", "MR", "HEAD")
    with pytest.raises(IntegrityError), transaction.atomic():
        make("Two", "MR", "HEAD")
    make("Inactive twin", "MR", "HEAD", active=False)  # inactive ones may share a scope


@pytest.mark.parametrize(
    ("modality", "body_part", "says"),
    [
        ("US", "ABDOMEN", "MedGemma drafts chest X-rays \\(CR/DX\\), CT and MR; a template for US"),
        ("MG", "", "a template for MG would never be used"),
        ("CR", "KNEE", "Of radiographs, MedGemma drafts only the chest; a CR template for the knee"),
    ],
)
@pytest.mark.django_db
def test_a_template_for_what_medgemma_does_not_draft_is_refused(admin, modality, body_part, says):
    with pytest.raises(TemplateError, match=says):
        template_create(user=admin, name="X", modality=modality, body_part=body_part, findings="Normal.")
    assert not ReportTemplate.objects.exists() and not template_events()


@pytest.mark.django_db
def test_a_template_needs_a_name_and_some_text(admin):
    with pytest.raises(TemplateError, match="Give the template a name"):
        template_create(user=admin, name="  ", modality="CT", findings="Normal.")
    with pytest.raises(TemplateError, match="The template is empty"):
        template_create(user=admin, name="Empty", modality="CT")


@pytest.mark.django_db
def test_every_change_is_audited_as_a_software_configuration_change(admin):
    template = template_create(
        user=admin, name="MR head", modality="MR", body_part="HEAD", findings="Normal."
    )
    template_update(
        template=template, user=admin, name="MR brain", prompt_instruction="Comment on the ventricles."
    )
    template_update(template=template, user=admin, name="MR brain")  # no change: nothing recorded
    template_set_active(template=template, active=False, user=admin)
    template_delete(template=template, user=admin)

    events = template_events()
    assert [(e.description, e.action) for e in events] == [
        ("Report template created: MR head", Action.CREATE),
        ("Report template changed: MR brain", Action.UPDATE),
        ("Report template deactivated: MR brain", Action.UPDATE),
        ("Report template deleted: MR brain", Action.DELETE),
    ]
    assert {(e.event_type, e.username, e.object_id) for e in events} == {
        (EventType.SECURITY_ALERT, "ada", str(template.pk))
    }
    assert all(e.detail["event_type_code"] == "110131" for e in events)
    assert events[1].detail["changed"] == ["name", "prompt_instruction"]
    assert events[1].detail["before"] == {"name": "MR head", "modality": "MR", "body_part": "HEAD"}
    assert not ReportTemplate.objects.exists()


def drafted_with(template: ReportTemplate, user, text: str, sections: tuple[str, ...]) -> Report:
    patient, _ = Patient.objects.get_or_create(patient_id="MRN-T", defaults={"name": "Template Patient"})
    study = Study.objects.create(study_uid=generate_uid(), patient=patient, modality="CT", body_part="HEAD")
    report = drafts.report_for_study(study=study)
    attempt = drafts.draft_request(report=report, user=user).attempt
    claim = drafts.draft_start(report_id=report.pk, attempt=attempt)
    provenance = DraftProvenance(
        model_id="tiny",
        model_revision="",
        prompt=f"[ct-slice-v1; template: {template.name}]",
        generation_params={},
        template_id=template.pk,
        template_name=template.name,
        sections=sections,
    )
    assert drafts.draft_finish(claim=claim, text=text, provenance=provenance)
    return Report.objects.get(pk=report.pk)


@pytest.mark.django_db
def test_a_template_a_report_used_can_be_deactivated_but_not_deleted(admin, radiologist):
    template = make("CT head", "CT", "HEAD")
    report = drafted_with(template, radiologist, "FINDINGS: Normal.", ("Findings", "Impression"))
    assert (report.template, report.template_name) == (template, "CT head")

    with pytest.raises(TemplateError, match="used by 1 report, which must keep it on record; deactivate it"):
        template_delete(template=template, user=admin)
    with pytest.raises(ProtectedError):  # and the database agrees
        ReportTemplate.objects.get(pk=template.pk).delete()

    template_set_active(template=template, active=False, user=admin)
    template_update(template=template, user=admin, name="CT head (old)")
    report.refresh_from_db()
    assert (report.template_id, report.template_name) == (template.pk, "CT head")  # as drafted


@pytest.mark.django_db
def test_a_draft_is_split_into_the_sections_its_template_has(radiologist):
    text = (
        "TECHNIQUE: Axial images without contrast.\n"
        "COMPARISON: None.\n"
        "FINDINGS: No hemorrhage.\n"
        "IMPRESSION: Normal CT head."
    )
    with_sections = make("CT head", "CT", "HEAD", has_technique=True, has_comparison=True)
    report = drafted_with(
        with_sections, radiologist, text, ("Technique", "Comparison", "Findings", "Impression")
    )

    assert (report.technique, report.comparison, report.findings, report.impression) == (
        "Axial images without contrast.",
        "None.",
        "No hemorrhage.",
        "Normal CT head.",
    )
    [version] = report.versions.all()
    assert (version.technique, version.comparison) == ("Axial images without contrast.", "None.")

    # A template without them: the model's Technique and Comparison stay in the findings, not lost.
    plain = make("CT any", "CT")
    report = drafted_with(plain, radiologist, text, ("Findings", "Impression"))
    assert (report.technique, report.comparison) == ("", "")
    assert report.findings == "TECHNIQUE: Axial images without contrast.\nCOMPARISON: None.\n\nNo hemorrhage."
    assert report.impression == "Normal CT head."


# -- IHE MRRT import ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_mrrt_import_takes_modality_and_body_part_from_its_codes(admin):
    template, parsed = template_import_mrrt(data=(DATA / "mrrt_ct_head.html").read_bytes(), user=admin)

    assert (template.name, template.modality, template.body_part) == (
        "CT head without contrast",
        "CT",
        "HEAD",
    )
    assert (template.source, template.source_id) == ("mrrt", "urn:medportal:test:mrrt:ct-head")
    assert (template.has_technique, template.has_comparison) == (True, True)
    assert template.comparison == "[Prior CT head of: date]"
    assert "[Intracranial hemorrhage: none/present]" in template.findings
    assert template.impression == "No acute intracranial abnormality."
    assert template_events()[-1].detail["source_id"] == "urn:medportal:test:mrrt:ct-head"


@pytest.mark.django_db
def test_an_mrrt_import_asks_for_what_its_codes_do_not_settle(admin):
    chest = (DATA / "mrrt_chest_radiograph.html").read_bytes()
    with pytest.raises(TemplateError, match="coded for CR or DX \\(projection radiography\\); choose"):
        template_import_mrrt(data=chest, user=admin)
    knee = (DATA / "mrrt_mr_knee_uncoded.html").read_bytes()
    with pytest.raises(TemplateError, match="does not say its modality"):
        template_import_mrrt(data=knee, user=admin)
    assert not ReportTemplate.objects.exists() and not template_events()

    cxr, _ = template_import_mrrt(data=chest, modality="DX", user=admin)
    assert (cxr.modality, cxr.body_part, cxr.has_technique) == ("DX", "CHEST", True)
    assert cxr.findings.startswith("[Lungs: Clear/Focal opacity/Edema]")
    mr, _ = template_import_mrrt(data=knee, modality="MR", body_part="knee", user=admin)
    assert (mr.modality, mr.body_part, mr.has_technique, mr.has_comparison) == ("MR", "KNEE", False, False)


@pytest.mark.django_db
def test_an_mrrt_import_that_fails_stores_nothing(admin):
    with pytest.raises(MrrtError):
        template_import_mrrt(data=b"<html><body><p>No sections.</p></body></html>", modality="CT", user=admin)
    # A valid file for a modality MedGemma does not draft: the template's own check refuses it.
    us = (DATA / "mrrt_mr_knee_uncoded.html").read_bytes()
    with pytest.raises(TemplateError, match="a template for US"):
        template_import_mrrt(data=us, modality="US", user=admin)
    assert not ReportTemplate.objects.exists() and not template_events()
