"""The DICOM SR of a signed report, read back by pydicom, highdicom and dcmtk's dsrdump."""

from __future__ import annotations

import io
import json
import subprocess

import highdicom as hd
import pydicom
import pytest
from PIL import Image
from pydicom.uid import ComprehensiveSRStorage

from medportal.exports.content import signed_report as signed_report_of
from medportal.exports.dicom_sr import report_sr, sr_bytes
from medportal.reporting.provenance import provenance_line
from tests.exports.conftest import (
    COMPARISON,
    CT_MRN,
    CT_SOP_UID,
    CT_STUDY_UID,
    FINDINGS,
    IMPRESSION,
    PROVENANCE,
    TECHNIQUE,
    TEMPLATE_NAME,
    add_addendum,
    received_report,
    signed,
)


def sr_file(report) -> bytes:
    return sr_bytes(report_sr(signed_report_of(report)))


def read_back(data: bytes) -> hd.sr.ComprehensiveSR:
    dataset = pydicom.dcmread(io.BytesIO(data))
    assert dataset.file_meta.MediaStorageSOPClassUID == ComprehensiveSRStorage
    return hd.sr.ComprehensiveSR.from_dataset(dataset)


def texts(container) -> dict[str, str]:
    """Section heading -> its narrative text (what the section CONTAINS), for each section."""
    out = {}
    for item in container.ContentSequence:
        if item.ValueType == "CONTAINER":
            heading = item.ConceptNameCodeSequence[0].CodeMeaning
            out[heading] = "\n".join(
                c.TextValue
                for c in item.ContentSequence
                if c.ValueType == "TEXT" and c.RelationshipType == "CONTAINS"
            )
    return out


def test_the_sr_is_in_the_study_with_its_patient_sections_and_verified_signer(signed_report, tmp_path):
    data = sr_file(signed_report)
    sr = read_back(data)

    assert sr.StudyInstanceUID == CT_STUDY_UID == signed_report.study.study_uid
    assert sr.SeriesInstanceUID != signed_report.study.series.get().series_uid
    # The patient module is the stored instance's.
    assert (sr.PatientID, str(sr.PatientName), sr.PatientSex) == (CT_MRN, "CompressedSamples^CT1", "O")
    assert sr.Modality == "SR"
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == ("COMPLETE", "VERIFIED", "FINAL")
    (verifier,) = sr.VerifyingObserverSequence
    assert verifier.VerifyingObserverName == "Radiologist^Rita"
    assert verifier.VerifyingOrganization == "St. Example Hospital"
    assert verifier.VerificationDateTime.startswith(f"{signed_report.signed_at:%Y%m%d%H%M%S}")
    assert sr.InstitutionName == "St. Example Hospital"
    evidence = sr.get_evidence()
    assert [(e[0], e[2]) for e in evidence] == [(CT_STUDY_UID, CT_SOP_UID)]

    assert sr.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    sections = texts(sr)
    assert sections["Current Procedure Descriptions"] == TECHNIQUE
    assert sections["Prior Procedure Descriptions"] == COMPARISON
    assert sections["Findings"] == FINDINGS
    assert sections["Impressions"] == IMPRESSION
    assert sections["AI provenance"] == provenance_line(signed_report)

    # dcmtk reads it as a valid SR document tree, independently of the libraries that wrote it.
    path = tmp_path / "sr.dcm"
    path.write_bytes(data)
    dump = subprocess.run(["dsrdump", "+Pl", str(path)], capture_output=True, text=True, timeout=30)
    assert dump.returncode == 0, dump.stderr
    assert "Comprehensive SR Document" in dump.stdout
    assert "Verification Flag   : VERIFIED" in dump.stdout
    assert [line for line in dump.stderr.splitlines() if "Specific Character Set" not in line] == []


def test_observers_are_the_signer_and_the_model_and_the_algorithm_is_identified(signed_report):
    sr = read_back(sr_file(signed_report))

    context = {
        item.ConceptNameCodeSequence[0].CodeMeaning: item
        for item in sr.ContentSequence
        if item.RelationshipType == "HAS OBS CONTEXT"
    }
    assert context["Person Observer Name"].PersonName == "Radiologist^Rita"
    assert context["Device Observer Name"].TextValue == PROVENANCE.model_id
    provenance = next(
        item for item in sr.ContentSequence if item.ConceptNameCodeSequence[0].CodeValue == "AIPROV"
    )
    algorithm = {c.ConceptNameCodeSequence[0].CodeMeaning: c.TextValue for c in provenance.ContentSequence}
    assert algorithm["Algorithm Name"] == PROVENANCE.model_id
    assert algorithm["Algorithm Version"] == PROVENANCE.model_revision
    parameters = json.loads(algorithm["Algorithm Parameters"])
    assert parameters["template"] == TEMPLATE_NAME
    assert parameters["prompt"] == PROVENANCE.prompt
    assert parameters["generation_params"] == PROVENANCE.generation_params
    assert parameters["preprocessing"] == PROVENANCE.preprocessing
    languages = [i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "121049"]
    assert languages[0].ConceptCodeSequence[0].CodeValue == "en-US"


def test_the_same_signed_text_is_the_same_instance_and_an_addendum_makes_its_successor(
    signed_report, rita, ravi
):
    first = read_back(sr_file(signed_report))
    again = read_back(sr_file(signed_report))
    assert again.SOPInstanceUID == first.SOPInstanceUID

    add_addendum(signed_report, ravi, "Addendum: compare with the prior of 2003.")
    amended = read_back(sr_file(signed_report))

    assert amended.SOPInstanceUID != first.SOPInstanceUID
    assert amended.SeriesInstanceUID == first.SeriesInstanceUID
    assert amended.InstanceNumber == 2
    predecessor = amended.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert predecessor.ReferencedSOPInstanceUID == first.SOPInstanceUID
    addendum = next(
        i for i in amended.ContentSequence if i.ConceptNameCodeSequence[0].CodeMeaning == "Addendum"
    )
    by_name = {c.ConceptNameCodeSequence[0].CodeMeaning: c for c in addendum.ContentSequence}
    assert by_name["Comment"].TextValue == "Addendum: compare with the prior of 2003."
    assert by_name["Person Observer Name"].PersonName == "Reader^Ravi"
    assert [v.VerifyingObserverName for v in amended.VerifyingObserverSequence] == [
        "Radiologist^Rita",
        "Reader^Ravi",
    ]


@pytest.fixture
def png_study_report(rita):
    out = io.BytesIO()
    Image.new("L", (32, 32), 128).save(out, format="PNG")
    return signed(received_report(rita, name="chest.png", data=out.getvalue()), rita)


def test_an_sr_of_plain_images_carries_the_study_uid_and_lists_no_dicom_evidence(png_study_report):
    sr = read_back(sr_file(png_study_report))

    assert sr.StudyInstanceUID == png_study_report.study.study_uid
    assert sr.PatientID == png_study_report.study.patient.patient_id
    assert "CurrentRequestedProcedureEvidenceSequence" not in sr
    assert texts(sr)["Findings"] == FINDINGS
