"""The PDF of a signed report, read back as text: what a reader of the paper must see."""

from __future__ import annotations

import dataclasses

import pytest

from medportal.exports.content import NotSigned
from medportal.exports.content import signed_report as signed_report_of
from medportal.exports.pdf import report_pdf
from medportal.imaging.ingest import IncomingFile, IngestError, parse_file
from medportal.reporting.provenance import provenance_line
from tests.exports.conftest import (
    COMPARISON,
    CT_MRN,
    FINDINGS,
    IMPRESSION,
    PROVENANCE,
    TECHNIQUE,
    TEMPLATE_NAME,
    pdf_text,
    received_report,
    signed,
)
from tests.imaging.test_ingest import picture


def test_the_pdf_names_the_institution_patient_study_text_signer_and_ai_provenance(signed_report):
    data = report_pdf(signed_report_of(signed_report))

    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    for expected in [
        "St. Example Hospital",
        "1 Harbour Road",
        "Radiology report",
        "Final",
        "CompressedSamples CT1",  # the patient's name from the DICOM header
        f"MRN {CT_MRN}",
        "Study date 2004-01-19",
        "Technique " + TECHNIQUE,
        "Comparison " + COMPARISON,
        "Findings " + FINDINGS,
        "Impression " + IMPRESSION,
        "Signed by Rita Radiologist on",
        # The one line every export carries, then the details.
        " ".join(provenance_line(signed_report).split()),
        f"Model {PROVENANCE.model_id}",
        f"Revision {PROVENANCE.model_revision}",
        f"Template {TEMPLATE_NAME}",
    ]:
        assert expected in text, f"{expected!r} is not in the PDF: {text}"
    assert text.index("Findings") < text.index("Impression") < text.index("Signed by")
    assert "AI-assisted" in text
    assert "Addendum" not in text


def test_addenda_follow_the_report_in_order_with_their_signers_and_times(amended_report):
    text = pdf_text(report_pdf(signed_report_of(amended_report)))

    assert "Amended (2 addenda)" in text
    first = text.index(
        "Addendum 1 The nodule measures 11 mm on the sagittal images. Signed by Rita Radiologist on"
    )
    second = text.index("Addendum 2 Discussed with Dr. Who on the phone. Signed by Ravi Reader on")
    assert text.index("Impression") < first < second
    addendum = amended_report.addenda.get(number=2)
    assert f"on {addendum.signed_at:%Y-%m-%d %H:%M}" in text[second:]


def test_sections_left_empty_are_left_out_and_a_report_written_by_hand_says_no_ai_was_used(rita):
    report = signed(received_report(rita), rita, ai=False, technique="")

    text = pdf_text(report_pdf(signed_report_of(report)))

    assert "Technique" not in text and "Comparison" not in text
    assert "Findings " + FINDINGS in text
    assert "Written by the radiologist (Rita Radiologist); no AI draft was used." in text
    assert "Model" not in text


def test_a_draft_of_the_test_model_is_named_as_meaningless_on_paper(rita):
    tiny = dataclasses.replace(PROVENANCE, model_id="tiny")
    report = signed(received_report(rita), rita, provenance=tiny)

    text = pdf_text(report_pdf(signed_report_of(report)))

    assert "Test model (random weights): its draft text is meaningless." in text


def test_an_unsigned_report_has_no_pdf(rita):
    report = received_report(rita)

    with pytest.raises(NotSigned, match="Only a signed report can be exported; this one is awaiting draft"):
        signed_report_of(report)


@pytest.mark.django_db
def test_after_a_pdf_a_truncated_picture_upload_is_still_refused(signed_report):
    # WeasyPrint's import makes Pillow accept truncated images process-wide; ingest must not.
    report_pdf(signed_report_of(signed_report))
    with pytest.raises(IngestError, match="image cannot be decoded"):
        parse_file(IncomingFile("broken.png", picture("PNG")[:60]))
