"""The signed report as FHIR R4: a Bundle (type "collection") of the DiagnosticReport, the
ImagingStudy it reports on, the Patient, the signing Practitioner(s), the Organization, and a
Provenance resource with the AI's part.

FHIR version: fhir.resources validates against its R4B (4.3.0) models; R4B is R4 (4.0.1) with
technical corrections, and the resources written here have the same elements in both.

Choices, so that a receiver knows where to look:
- ``status`` is "final", or "amended" once the report has addenda. Addenda are never hidden
  in an extension: each is in ``conclusion`` after the Impression ("Addendum 1 (signed by ...,
  at ...): ..."), and in ``presentedForm`` (the whole report as text/plain), with its signer
  among ``resultsInterpreter``.
- ``code`` is LOINC 18748-4 "Diagnostic imaging study": the modality and body part in the
  header do not name a more specific LOINC (RSNA Playbook) procedure.
- The subject is a reference to the Patient and also carries the MRN as its identifier
  (system ``MEDPORTAL_FHIR_MRN_SYSTEM``, type MR).
- The ImagingStudy's identifier is the Study Instance UID (system ``urn:dicom:uid``, value
  ``urn:oid:<uid>``), with the accession number as a second one (type ACSN).
- AI provenance is a Provenance resource that targets the report: the model as a Device
  (agent "author": it wrote the draft), the signer as agent "verifier", and an extension
  (``AI_GENERATION_URL``) with the template, prompt, instruction, generation parameters,
  preprocessing and the one-line statement every export carries. The same sentence is also
  in the report's narrative and its presentedForm. A report written without AI gets a
  Provenance with the radiologist alone.
"""

from __future__ import annotations

import base64
import html
import json
import uuid

from django.conf import settings
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from medportal.accounts.names import display_name
from medportal.communication.critical import critical_statement, report_critical_results
from medportal.exports.content import SignedReport

LOINC = "http://loinc.org"
DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
AI_GENERATION_URL = "urn:medportal:fhir:StructureDefinition:ai-generation"
REPORT_ID_SYSTEM = "urn:medportal:report"
USER_SYSTEM = "urn:medportal:user"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CRITICAL_INTERPRETATION = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    "code": "AA",
    "display": "Critical abnormal",
}
REPORT_CODE = {"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}

# Stable resource ids: the same report exported twice gives the same Bundle entries.
_NAMESPACE = uuid.UUID("5f0c7a52-3b8e-4c1e-9a56-6d0f3e2b8a11")


def _urn(kind: str, key: object) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{kind}:{key}')}"


def _instant(value) -> str:
    return timezone.localtime(value).isoformat(timespec="seconds")


def _date(value: str) -> str | None:
    """A DICOM DA (YYYYMMDD) as a FHIR date."""
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return None


def report_text(content: SignedReport) -> str:
    """The whole signed report as plain text (FHIR presentedForm)."""
    study, patient = content.study, content.patient
    lines = [
        content.institution_name,
        *([content.institution_address] if content.institution_address else []),
        "",
        "Radiology report" + (" (amended)" if content.amended else ""),
        f"Patient: {patient.name or '(no name)'}  MRN: {patient.patient_id}",
        f"Accession: {study.accession_number or '-'}  Study date: {study.study_date or '-'}"
        f"  Modality: {study.modality or '-'}",
        f"Study UID: {study.study_uid}",
        "",
    ]
    if study.indication:
        lines += ["CLINICAL INDICATION", study.indication, ""]
    for heading, text in content.sections:
        lines += [heading.upper(), text or "-", ""]
    lines.append(f"Signed by {content.signer_name} at {_instant(content.signed_at)}.")
    for addendum in content.addenda:
        lines += [
            "",
            f"ADDENDUM {addendum.number}",
            addendum.text,
            f"Signed by {display_name(addendum.signed_by)} at {_instant(addendum.signed_at)}.",
        ]
    lines += ["", content.provenance_line]
    return "\n".join(lines) + "\n"


def _conclusion(content: SignedReport) -> str:
    parts = [content.report.impression.strip()]
    parts += [
        f"Addendum {a.number} (signed by {display_name(a.signed_by)} at {_instant(a.signed_at)}): {a.text}"
        for a in content.addenda
    ]
    return "\n\n".join(p for p in parts if p)


def _narrative(content: SignedReport) -> dict:
    e = html.escape
    body = "".join(f"<h3>{e(h)}</h3><p>{e(t or '-')}</p>" for h, t in content.sections)
    body += f"<p>Signed by {e(content.signer_name)} at {e(_instant(content.signed_at))}.</p>"
    for a in content.addenda:
        body += (
            f"<h3>Addendum {a.number}</h3><p>{e(a.text)}</p>"
            f"<p>Signed by {e(display_name(a.signed_by))} at {e(_instant(a.signed_at))}.</p>"
        )
    body += f"<p>{e(content.provenance_line)}</p>"
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}


def _practitioner(user) -> tuple[str, dict]:
    full_url = _urn("practitioner", user.pk)
    name = {"text": display_name(user)}
    if user.last_name:
        name["family"] = user.last_name
    if user.first_name:
        name["given"] = [user.first_name]
    return full_url, {
        "resourceType": "Practitioner",
        "identifier": [{"system": USER_SYSTEM, "value": user.get_username()}],
        "name": [name],
    }


def _patient(content: SignedReport, mrn: dict) -> dict:
    patient = content.patient
    resource = {
        "resourceType": "Patient",
        "identifier": [mrn],
        "name": [{"text": patient.name}] if patient.name else [],
    }
    gender = {"M": "male", "F": "female", "O": "other"}.get(patient.sex.upper())
    if gender:
        resource["gender"] = gender
    if birth := _date(patient.birth_date):
        resource["birthDate"] = birth
    return resource


def _imaging_study(content: SignedReport, patient_ref: dict) -> dict:
    study = content.study
    identifiers = [{"use": "official", "system": "urn:dicom:uid", "value": f"urn:oid:{study.study_uid}"}]
    if study.accession_number:
        identifiers.append(
            {
                "type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
                "value": study.accession_number,
            }
        )
    modalities = sorted({s.modality or "OT" for s in content.series} or {study.modality or "OT"})
    resource = {
        "resourceType": "ImagingStudy",
        "identifier": identifiers,
        "status": "available",
        "modality": [{"system": DICOM_DCM, "code": m} for m in modalities],
        "subject": patient_ref,
        "numberOfSeries": len(content.series),
        "numberOfInstances": sum(s.instance_count for s in content.series),
        "series": [
            {
                "uid": s.series_uid,
                **({"number": s.series_number} if s.series_number is not None else {}),
                "modality": {"system": DICOM_DCM, "code": s.modality or "OT"},
                **({"description": s.description} if s.description else {}),
                "numberOfInstances": s.instance_count,
            }
            for s in content.series
        ],
    }
    if study.study_date:
        resource["started"] = study.study_date.isoformat()
    if study.description:
        resource["description"] = study.description
    if study.indication:
        resource["reasonCode"] = [{"text": study.indication}]
    return resource


def _provenance(content: SignedReport, report_url: str, signer_url: str) -> list[tuple[str, dict]]:
    """The Provenance of the report, and the model's Device when an AI draft was used."""
    report, prov = content.report, content.provenance
    signer = {"reference": signer_url, "display": content.signer_name}
    agents = [
        {"type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "verifier"}]}, "who": signer},
    ]
    entries = []
    provenance = {
        "resourceType": "Provenance",
        "target": [{"reference": report_url}],
        "recorded": _instant(content.last_signed_at),
        "agent": agents,
    }
    if prov["ai_assisted"]:
        device_url = _urn("device", f"{prov['model_id']}@{prov['model_revision']}")
        device = {
            "resourceType": "Device",
            "deviceName": [{"name": prov["model_id"], "type": "model-name"}],
            "type": {"text": "AI model that drafts radiology reports"},
        }
        if prov["model_revision"]:
            device["version"] = [{"value": prov["model_revision"]}]
        entries.append((device_url, device))
        agents.insert(
            0,
            {
                "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "author"}]},
                "who": {"reference": device_url, "display": prov["model_id"]},
            },
        )
        if report.draft_started_at and report.draft_finished_at:
            provenance["occurredPeriod"] = {
                "start": _instant(report.draft_started_at),
                "end": _instant(report.draft_finished_at),
            }
    provenance["extension"] = [
        {
            "url": AI_GENERATION_URL,
            "extension": [
                {"url": "statement", "valueString": content.provenance_line},
                *_generation_details(prov),
            ],
        }
    ]
    entries.append((_urn("provenance", report.pk), provenance))
    return entries


def _generation_details(prov: dict) -> list[dict]:
    if not prov["ai_assisted"]:
        return [{"url": "aiAssisted", "valueBoolean": False}]
    details = [{"url": "aiAssisted", "valueBoolean": True}]
    for key in ("template", "prompt", "instruction"):
        if prov[key]:
            details.append({"url": key, "valueString": prov[key]})
    for key, url in (("generation_params", "generationParameters"), ("preprocessing", "preprocessing")):
        details.append({"url": url, "valueString": json.dumps(prov[key], sort_keys=True)})
    return details


def _critical_observations(content: SignedReport, subject: dict) -> list[tuple[str, dict]]:
    """Each critical result as an Observation interpreted AA (critical abnormal), with its
    category, finding and communication statement; the report lists them as its results."""
    return [
        (
            _urn("critical-result", critical.pk),
            {
                "resourceType": "Observation",
                "status": "final",
                "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "imaging"}]}],
                "code": {"text": f"Critical result: {critical.category}"},
                "subject": subject,
                "issued": _instant(critical.created_at),
                "valueString": critical.finding,
                "interpretation": [{"coding": [CRITICAL_INTERPRETATION]}],
                "note": [{"text": critical_statement(critical, as_of=content.report.signed_at)}],
            },
        )
        for critical in report_critical_results(content.report, signed_at=content.report.signed_at)
    ]


def report_fhir_bundle(content: SignedReport) -> dict:
    """The FHIR Bundle as JSON-ready data, validated by fhir.resources (ValueError when invalid)."""
    report, study, patient = content.report, content.study, content.patient
    report_url = _urn("report", report.pk)
    patient_url = _urn("patient", patient.pk)
    study_url = _urn("imaging-study", study.pk)
    org_url = _urn("organization", content.institution_name)
    mrn = {
        "use": "usual",
        "type": {"coding": [{"system": V2_0203, "code": "MR", "display": "Medical record number"}]},
        "system": settings.MEDPORTAL_FHIR_MRN_SYSTEM,
        "value": patient.patient_id,
    }
    patient_ref = {"reference": patient_url, "identifier": mrn, "display": patient.name or patient.patient_id}

    interpreters = {}
    for user in [report.signed_by, *(a.signed_by for a in content.addenda)]:
        interpreters.setdefault(user.pk, _practitioner(user))
    signer_url = interpreters[report.signed_by.pk][0]

    organization = {"resourceType": "Organization", "name": content.institution_name}
    if content.institution_address:
        organization["address"] = [{"text": content.institution_address}]

    text = report_text(content)
    diagnostic_report = {
        "resourceType": "DiagnosticReport",
        "text": _narrative(content),
        "identifier": [{"system": REPORT_ID_SYSTEM, "value": str(report.pk)}],
        "status": "amended" if content.amended else "final",
        "category": [{"coding": [{"system": V2_0074, "code": "RAD", "display": "Radiology"}]}],
        "code": {"coding": [REPORT_CODE], "text": study.description or REPORT_CODE["display"]},
        "subject": patient_ref,
        "issued": _instant(content.last_signed_at),
        "performer": [{"reference": org_url, "display": content.institution_name}],
        "resultsInterpreter": [
            {"reference": url, "display": resource["name"][0]["text"]}
            for url, resource in interpreters.values()
        ],
        "imagingStudy": [{"reference": study_url}],
        "conclusion": _conclusion(content),
        "presentedForm": [
            {
                "contentType": "text/plain; charset=utf-8",
                "language": "en",
                "data": base64.b64encode(text.encode()).decode(),
                "title": "Radiology report" + (" (amended)" if content.amended else ""),
                "creation": _instant(content.last_signed_at),
            }
        ],
    }
    if study.study_date:
        diagnostic_report["effectiveDateTime"] = study.study_date.isoformat()
    critical = _critical_observations(content, {"reference": patient_url, "identifier": mrn})
    if critical:
        diagnostic_report["result"] = [{"reference": url} for url, _ in critical]

    entries = [
        (report_url, diagnostic_report),
        (study_url, _imaging_study(content, {"reference": patient_url, "identifier": mrn})),
        (patient_url, _patient(content, mrn)),
        *interpreters.values(),
        (org_url, organization),
        *_provenance(content, report_url, signer_url),
        *critical,
    ]
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(_NAMESPACE, f"bundle:{report.pk}:{len(content.addenda)}")),
        "type": "collection",
        "timestamp": _instant(timezone.now()),
        "entry": [
            {"fullUrl": url, "resource": {**resource, "id": url.removeprefix("urn:uuid:")}}
            for url, resource in entries
        ],
    }
    # Raises pydantic's ValidationError (a ValueError) for anything the R4(B) models refuse.
    return json.loads(Bundle.model_validate(bundle).model_dump_json(exclude_none=True))


def report_fhir_json(content: SignedReport) -> bytes:
    return json.dumps(report_fhir_bundle(content), indent=2, ensure_ascii=False).encode()
