"""The FHIR R4 Bundle of a signed report, validated by fhir.resources and read as a receiver would."""

from __future__ import annotations

import base64
import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from medportal.exports.content import signed_report as signed_report_of
from medportal.exports.fhir import AI_GENERATION_URL, report_fhir_json
from medportal.reporting.provenance import provenance_line
from tests.exports.conftest import (
    CT_MRN,
    CT_STUDY_UID,
    FINDINGS,
    IMPRESSION,
    PROVENANCE,
    TEMPLATE_NAME,
    received_report,
    signed,
)


def bundle_of(report) -> dict:
    data = json.loads(report_fhir_json(signed_report_of(report)))
    Bundle.model_validate(data)  # what a receiver using the R4(B) models accepts
    return data


def only(bundle: dict, resource_type: str) -> dict:
    found = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]
    assert len(found) == 1, f"{len(found)} {resource_type} resources"
    return found[0]


def resolve(bundle: dict, reference: dict) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference["reference"])


def test_the_diagnostic_report_is_final_with_loinc_code_mrn_subject_and_its_imaging_study(
    signed_report, settings
):
    settings.MEDPORTAL_FHIR_MRN_SYSTEM = "urn:oid:1.2.3.4.5"
    bundle = bundle_of(signed_report)

    assert bundle["type"] == "collection"
    report = only(bundle, "DiagnosticReport")
    assert report["status"] == "final"
    assert report["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "18748-4", "display": "Diagnostic imaging study"}
    ]
    assert report["category"][0]["coding"][0]["code"] == "RAD"
    assert report["subject"]["identifier"]["value"] == CT_MRN
    assert report["subject"]["identifier"]["system"] == "urn:oid:1.2.3.4.5"
    assert report["subject"]["identifier"]["type"]["coding"][0]["code"] == "MR"
    assert resolve(bundle, report["subject"])["identifier"][0]["value"] == CT_MRN
    assert report["conclusion"] == IMPRESSION
    assert report["effectiveDateTime"] == "2004-01-19"
    assert report["issued"].startswith(signed_report.signed_at.strftime("%Y-%m-%dT%H:%M"))
    assert resolve(bundle, report["resultsInterpreter"][0])["name"][0]["text"] == "Rita Radiologist"
    assert resolve(bundle, report["performer"][0])["name"] == "St. Example Hospital"

    study = resolve(bundle, report["imagingStudy"][0])
    assert study["resourceType"] == "ImagingStudy"
    assert study["identifier"][0] == {
        "use": "official",
        "system": "urn:dicom:uid",
        "value": f"urn:oid:{CT_STUDY_UID}",
    }
    assert study["numberOfInstances"] == 1 and study["series"][0]["modality"]["code"] == "CT"
    assert study["subject"]["identifier"]["value"] == CT_MRN

    text = base64.b64decode(report["presentedForm"][0]["data"]).decode()
    assert f"FINDINGS\n{FINDINGS}" in text and f"IMPRESSION\n{IMPRESSION}" in text
    assert provenance_line(signed_report) in text


def test_every_reference_in_the_bundle_resolves_inside_it(amended_report):
    bundle = bundle_of(amended_report)
    full_urls = {e["fullUrl"] for e in bundle["entry"]}

    def references(node):
        if isinstance(node, dict):
            if isinstance(node.get("reference"), str):
                yield node["reference"]
            for value in node.values():
                yield from references(value)
        elif isinstance(node, list):
            for value in node:
                yield from references(value)

    found = list(references(bundle))
    assert len(found) >= 8
    assert set(found) <= full_urls


def test_ai_provenance_is_a_provenance_resource_naming_the_model_and_the_signer(signed_report):
    bundle = bundle_of(signed_report)
    report_url = next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"
    )

    provenance = only(bundle, "Provenance")
    assert provenance["target"] == [{"reference": report_url}]
    agents = {a["type"]["coding"][0]["code"]: resolve(bundle, a["who"]) for a in provenance["agent"]}
    assert agents["author"]["resourceType"] == "Device"
    assert agents["author"]["deviceName"][0]["name"] == PROVENANCE.model_id
    assert agents["author"]["version"][0]["value"] == PROVENANCE.model_revision
    assert agents["verifier"]["name"][0]["text"] == "Rita Radiologist"
    (extension,) = provenance["extension"]
    assert extension["url"] == AI_GENERATION_URL
    details = {
        e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in extension["extension"]
    }
    assert details["statement"] == provenance_line(signed_report)
    assert details["aiAssisted"] is True
    assert details["template"] == TEMPLATE_NAME
    assert details["prompt"] == PROVENANCE.prompt
    assert json.loads(details["generationParameters"]) == PROVENANCE.generation_params
    assert json.loads(details["preprocessing"]) == PROVENANCE.preprocessing


def test_an_amended_report_is_amended_with_its_addenda_in_conclusion_and_text(amended_report):
    bundle = bundle_of(amended_report)

    report = only(bundle, "DiagnosticReport")
    assert report["status"] == "amended"
    conclusion = report["conclusion"]
    assert conclusion.startswith(IMPRESSION)
    first = conclusion.index("Addendum 1 (signed by Rita Radiologist at ")
    second = conclusion.index("Addendum 2 (signed by Ravi Reader at ")
    assert first < second
    assert "The nodule measures 11 mm on the sagittal images." in conclusion[first:second]
    text = base64.b64decode(report["presentedForm"][0]["data"]).decode()
    assert "ADDENDUM 2\nDiscussed with Dr. Who on the phone.\nSigned by Ravi Reader" in text
    interpreters = [resolve(bundle, r)["name"][0]["text"] for r in report["resultsInterpreter"]]
    assert interpreters == ["Rita Radiologist", "Ravi Reader"]
    addendum = amended_report.addenda.get(number=2)
    assert report["issued"].startswith(addendum.signed_at.strftime("%Y-%m-%dT%H:%M:%S"))


def test_a_report_written_without_ai_has_a_provenance_with_the_radiologist_alone(rita):
    report = signed(received_report(rita), rita, ai=False)

    provenance = only(bundle_of(report), "Provenance")

    assert [a["type"]["coding"][0]["code"] for a in provenance["agent"]] == ["verifier"]
    details = {e["url"]: e for e in provenance["extension"][0]["extension"]}
    assert details["aiAssisted"]["valueBoolean"] is False
    assert "no AI draft was used" in details["statement"]["valueString"]


def test_the_validator_refuses_what_r4_does_not_allow(signed_report):
    """The check above is not a formality: the same models refuse a malformed report."""
    data = bundle_of(signed_report)
    report = next(e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "DiagnosticReport")
    del report["status"]
    with pytest.raises(ValueError, match="status"):
        Bundle.model_validate(data)
