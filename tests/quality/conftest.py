"""Reports drafted through the worker's service path and signed through report_sign."""

from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from medportal.access.roles import Role
from medportal.imaging.models import Patient, Study
from medportal.reporting.models import Report
from medportal.reporting.services import drafts, editing
from medportal.reporting.services.drafts import DraftProvenance
from tests.conftest import PASSWORD, make_user

DRAFT = "FINDINGS: The lungs are clear.\nNo pleural effusion.\nIMPRESSION: Normal chest radiograph."
# The draft above as it is measured: sections normalised, a newline between them.
DRAFT_MEASURED = "The lungs are clear. No pleural effusion.\nNormal chest radiograph."


def provenance(model_id: str = "tiny", revision: str = "rev-1") -> DraftProvenance:
    return DraftProvenance(
        model_id=model_id,
        model_revision=revision,
        prompt="Write the report with a FINDINGS section and an IMPRESSION section.",
        generation_params={"max_new_tokens": 64, "do_sample": False},
    )


def new_report(modality: str = "CR") -> Report:
    patient, _ = Patient.objects.get_or_create(patient_id="MRN-Q", defaults={"name": "Quality Patient"})
    study = Study.objects.create(
        study_uid=generate_uid(), patient=patient, accession_number=generate_uid()[-16:], modality=modality
    )
    return drafts.report_for_study(study=study)


def drafted(
    report: Report, user, text: str = DRAFT, model_id: str = "tiny", revision: str = "rev-1"
) -> Report:
    """Request a draft and run the worker's service path for it."""
    attempt = drafts.draft_request(report=report, user=user).attempt
    claim = drafts.draft_start(report_id=report.pk, attempt=attempt)
    assert claim
    assert drafts.draft_finish(claim=claim, text=text, provenance=provenance(model_id, revision))
    return Report.objects.get(pk=report.pk)


def edited(report: Report, user, findings: str, impression: str) -> Report:
    return editing.report_save(
        report=report, user=user, findings=findings, impression=impression, expected_version=report.version
    )


@pytest.fixture
def sign(django_capture_on_commit_callbacks):
    """Sign as the radiologist would, running what waits for the commit (report_signed)."""

    def sign(report: Report, user) -> Report:
        with django_capture_on_commit_callbacks(execute=True):
            return editing.report_sign(report=report, user=user, password=PASSWORD)

    return sign


@pytest.fixture
def admin_user(db):
    return make_user("ada", Role.ADMIN)
