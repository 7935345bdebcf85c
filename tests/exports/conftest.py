"""Signed reports to export: a real CT from pydicom, ingested, drafted through the worker's
service path (the tiny model's provenance), edited with Technique and Comparison, signed."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from medportal.imaging.ingest import IncomingFile
from medportal.intake.receive import studies_receive
from medportal.reporting.models import Report
from medportal.reporting.services import drafts, editing
from medportal.reporting.services.drafts import DraftProvenance
from tests.conftest import PASSWORD, dicom_bytes

DRAFT = (
    "FINDINGS: A 9 mm nodule in the right upper lobe.\nIMPRESSION: Pulmonary nodule, follow-up CT advised."
)
PROVENANCE = DraftProvenance(
    model_id="google/medgemma-4b-it",
    model_revision="rev-7f3a",
    prompt="You are a radiologist. Write FINDINGS and IMPRESSION.",
    generation_params={"max_new_tokens": 512, "do_sample": False},
    preprocessing={"frames": 1, "size": [896, 896], "window": "header"},
    time_to_first_token_ms=80.0,
    tokens_per_second=30.0,
    generated_tokens=40,
)
TECHNIQUE = "Axial CT of the chest without contrast, 1 mm slices."
COMPARISON = "CT chest of 2003-06-01."
FINDINGS = "A 9 mm solid nodule in the right upper lobe. No effusion."
IMPRESSION = "Pulmonary nodule; follow-up CT in 3 months."
TEMPLATE_NAME = "CT chest (RSNA)"
# CT_small.dcm, the CT that ships with pydicom.
CT_STUDY_UID = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
CT_SOP_UID = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
CT_MRN = "1CT1"


@pytest.fixture(autouse=True)
def export_settings(settings):
    settings.MEDPORTAL_AUTO_DRAFT = False
    settings.MEDPORTAL_INSTITUTION_NAME = "St. Example Hospital"
    settings.MEDPORTAL_INSTITUTION_ADDRESS = "1 Harbour Road\nPortville"
    settings.MEDPORTAL_PACS_STOW_URL = ""
    settings.MEDPORTAL_PACS_HOST = ""
    return settings


@pytest.fixture
def rita(radiologist):
    radiologist.first_name, radiologist.last_name = "Rita", "Radiologist"
    radiologist.save()
    return radiologist


@pytest.fixture
def ravi(second_radiologist):
    second_radiologist.first_name, second_radiologist.last_name = "Ravi", "Reader"
    second_radiologist.save()
    return second_radiologist


def received_report(user, *, name: str = "CT_small.dcm", data: bytes | None = None) -> Report:
    _, reports = studies_receive(
        files=[IncomingFile(name, data if data is not None else dicom_bytes("CT_small.dcm"))],
        uploader=user,
        auto_draft=False,
    )
    return reports[0]


def drafted(report: Report, user, provenance: DraftProvenance = PROVENANCE) -> Report:
    """The worker's path: claim the draft, write it with its provenance."""
    attempt = drafts.draft_request(report=report, user=user).attempt
    claim = drafts.draft_start(report_id=report.pk, attempt=attempt)
    assert claim and drafts.draft_finish(claim=claim, text=DRAFT, provenance=provenance)
    # The worker records the template it drafted with; nothing else writes it yet.
    Report.objects.filter(pk=report.pk).update(template_name=TEMPLATE_NAME)
    return Report.objects.get(pk=report.pk)


def signed(
    report: Report, user, *, ai: bool = True, technique: str = TECHNIQUE, provenance=PROVENANCE
) -> Report:
    if ai:
        report = drafted(report, user, provenance)
    report = editing.report_save(
        report=report,
        user=user,
        technique=technique,
        comparison=COMPARISON if technique else "",
        findings=FINDINGS,
        impression=IMPRESSION,
        expected_version=report.version,
    )
    return editing.report_sign(report=report, user=user, password=PASSWORD)


def add_addendum(report: Report, user, text: str):
    return editing.addendum_sign(report=report, user=user, text=text, password=PASSWORD)


@pytest.fixture
def signed_report(rita) -> Report:
    return signed(received_report(rita), rita)


@pytest.fixture
def amended_report(signed_report, rita, ravi) -> Report:
    add_addendum(signed_report, rita, "The nodule measures 11 mm on the sagittal images.")
    add_addendum(signed_report, ravi, "Discussed with Dr. Who on the phone.")
    return Report.objects.get(pk=signed_report.pk)


def pdf_text(data: bytes) -> str:
    """The text a reader sees in the PDF, whitespace collapsed."""
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())
