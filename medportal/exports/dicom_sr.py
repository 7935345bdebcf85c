"""The signed report as a DICOM Comprehensive SR (highdicom), in the study it reports on.

Shape (TID 2000 "Basic Diagnostic Imaging Report"): a root container LN 18748-4 "Diagnostic
Imaging Report" with the language (en-US), the signing radiologist as person observer and,
when an AI draft was used, the model as device observer; then one section per part of the
report (CID 7001 codes: Current Procedure Descriptions for Technique, Prior Procedure
Descriptions for Comparison, Findings, Impressions), one Addendum section per addendum (its
signer as that section's observer, its sign time as its observation time), and a section
"AI provenance" (local code 99MEDPORTAL AIPROV) with the one-line statement and the
Algorithm Identification of TID 4019: name (model id), version (revision), parameters
(template, prompt, generation parameters, preprocessing as JSON).

The document is complete, verified and final; the verifying observers are the signer and
each addendum's signer, at the times they signed. Patient and study attributes are copied
from a stored instance of the study (same Study Instance UID), and every stored DICOM
instance is listed as evidence. A study of plain PNG/JPEG images has no DICOM instance to
copy or list: the patient and study attributes then come from MedPortal's rows.

UIDs are derived from the report, so exporting the same signed text twice gives the same
SOP Instance UID; an addendum makes a new instance that names the previous ones as its
predecessors.
"""

from __future__ import annotations

import io
import json

import highdicom as hd
from django.utils import timezone
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ComprehensiveSRStorage, generate_uid
from pydicom.valuerep import DT

from medportal.exports.content import SignedReport
from medportal.imaging.models import Instance
from medportal.imaging.storage import image_storage

SERIES_NUMBER = 990
SERIES_DESCRIPTION = "Radiology report (MedPortal)"
LOCAL_SCHEME = "99MEDPORTAL"
AI_PROVENANCE = hd.sr.CodedConcept("AIPROV", LOCAL_SCHEME, "AI provenance")
ENGLISH = hd.sr.CodedConcept("en-US", "RFC5646", "English (United States)")
_REFERENCE_TAGS = ["SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"]
_RT = hd.sr.RelationshipTypeValues

# (section heading in CID 7001, text item in CID 7002) for each part of the report.
SECTION_CODES = {
    "Technique": (codes.LN.CurrentProcedureDescriptions, codes.DCM.ProcedureDescription),
    "Comparison": (codes.LN.PriorProcedureDescriptions, codes.DCM.ProcedureDescription),
    "Findings": (codes.LN.Findings, codes.DCM.Finding),
    "Impression": (codes.LN.Impressions, codes.DCM.Impression),
}


def person_name(user) -> str:
    """A user as a DICOM PN: "Family^Given", or "username^" (a family name alone)."""

    def clean(text: str) -> str:
        return "".join(ch for ch in text if ch not in "^=\\").strip()[:64]

    if user.last_name or user.first_name:
        return f"{clean(user.last_name)}^{clean(user.first_name)}"
    return f"{clean(user.get_username())}^"


def sr_uids(content: SignedReport) -> tuple[str, str]:
    """The SR series UID (one per report) and the SOP Instance UID of this version of it."""
    return _series_uid(content), _sop_uid(content, len(content.addenda))


def _series_uid(content: SignedReport) -> str:
    return generate_uid(entropy_srcs=["medportal-sr-series", content.study.study_uid, str(content.report.pk)])


def _sop_uid(content: SignedReport, version: int) -> str:
    return generate_uid(
        entropy_srcs=["medportal-sr", content.study.study_uid, str(content.report.pk), str(version)]
    )


def _evidence(content: SignedReport) -> tuple[list[Dataset], bool]:
    """Headers of the study's stored DICOM instances (the first whole, for its patient and study
    modules; the others only their UIDs), and whether there were any."""
    # The instances the report was signed on: of its series then, received before the signature.
    instances = Instance.objects.filter(
        series__study_id=content.study.pk,
        series__series_uid__in=[s.series_uid for s in content.series],
        received_at__lte=content.signed_at,
        content_type=Instance.DICOM,
    ).order_by("series__series_number", "series_id", "instance_number", "id")
    storage = image_storage()
    headers = []
    for index, instance in enumerate(instances.only("sha256")):
        with storage.open(instance.storage_name, "rb") as handle:
            tags = None if index == 0 else _REFERENCE_TAGS
            headers.append(dcmread(handle, stop_before_pixels=True, specific_tags=tags))
    if headers:
        return headers, True
    return [_study_from_rows(content)], False


def _study_from_rows(content: SignedReport) -> Dataset:
    """Patient and study attributes from MedPortal's rows, for a study with no DICOM instance."""
    study, patient = content.study, content.patient
    ds = Dataset()
    ds.PatientName = patient.name.replace(" ", "^", 1) if patient.name else ""
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex if patient.sex in ("M", "F", "O") else ""
    ds.StudyInstanceUID = study.study_uid
    ds.AccessionNumber = study.accession_number
    ds.StudyID = ""
    ds.StudyDate = study.study_date.strftime("%Y%m%d") if study.study_date else ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    if study.description:
        ds.StudyDescription = study.description[:64]
    # Only so that highdicom can group it; removed again below (nothing in DICOM to reference).
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["medportal-no-dicom", study.study_uid])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["medportal-no-dicom-series", study.study_uid])
    return ds


def _text_section(heading: hd.sr.CodedConcept, item: hd.sr.CodedConcept, text: str):
    section = hd.sr.ContainerContentItem(name=heading, relationship_type=_RT.CONTAINS)
    section.ContentSequence = [hd.sr.TextContentItem(name=item, value=text, relationship_type=_RT.CONTAINS)]
    return section


def _person(user) -> hd.sr.ObserverContext:
    return hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=person_name(user)),
    )


def _content(content: SignedReport) -> hd.sr.ContainerContentItem:
    report, prov = content.report, content.provenance
    root = hd.sr.ContainerContentItem(name=codes.LN.DiagnosticImagingReport, template_id="2000")
    items = [*hd.sr.LanguageOfContentItemAndDescendants(language=ENGLISH), *_person(report.signed_by)]
    if prov["ai_assisted"]:
        device = hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=["medportal-model", prov["model_id"], prov["model_revision"]]),
            name=prov["model_id"][:64],
            model_name=prov["model_id"][:64],
        )
        items += hd.sr.ObserverContext(observer_type=codes.DCM.Device, observer_identifying_attributes=device)
    for heading, text in content.sections:
        section_code, item_code = SECTION_CODES[heading]
        items.append(_text_section(section_code, item_code, text or "-"))
    for addendum in content.addenda:
        section = hd.sr.ContainerContentItem(name=codes.LN.Addendum, relationship_type=_RT.CONTAINS)
        section.ObservationDateTime = _dt(addendum.signed_at)
        section.ContentSequence = [
            *_person(addendum.signed_by),
            hd.sr.TextContentItem(
                name=codes.DCM.Comment, value=addendum.text, relationship_type=_RT.CONTAINS
            ),
        ]
        items.append(section)
    items.append(_provenance_section(content))
    root.ContentSequence = items
    return root


def _provenance_section(content: SignedReport):
    prov = content.provenance
    section = hd.sr.ContainerContentItem(name=AI_PROVENANCE, relationship_type=_RT.CONTAINS)
    children = [
        hd.sr.TextContentItem(
            name=codes.DCM.Comment, value=content.provenance_line, relationship_type=_RT.CONTAINS
        )
    ]
    if prov["ai_assisted"]:
        parameters = {
            key: prov[key]
            for key in (
                "template",
                "prompt",
                "instruction",
                "generation_params",
                "preprocessing",
                "drafted_at",
            )
        }
        children += hd.sr.AlgorithmIdentification(
            name=prov["model_id"],
            version=prov["model_revision"] or "unspecified",
            parameters=[json.dumps(parameters, sort_keys=True)],
        )
    section.ContentSequence = children
    return section


def report_sr(content: SignedReport) -> hd.sr.ComprehensiveSR:
    series_uid, sop_uid = sr_uids(content)
    evidence, has_dicom = _evidence(content)
    signed = timezone.localtime(content.last_signed_at)
    previous = []
    for version in range(len(content.addenda)):
        earlier = Dataset()
        earlier.SOPClassUID = ComprehensiveSRStorage
        earlier.SOPInstanceUID = _sop_uid(content, version)
        earlier.StudyInstanceUID = content.study.study_uid
        earlier.SeriesInstanceUID = series_uid
        previous.append(earlier)
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence,
        content=_content(content),
        series_instance_uid=series_uid,
        series_number=SERIES_NUMBER,
        sop_instance_uid=sop_uid,
        instance_number=len(content.addenda) + 1,
        manufacturer="MedPortal",
        is_complete=True,
        is_final=True,
        is_verified=True,
        institution_name=content.institution_name[:64],
        verifying_observer_name=person_name(content.report.signed_by),
        verifying_organization=content.institution_name[:64],
        previous_versions=previous or None,
        series_description=SERIES_DESCRIPTION,
        content_date=signed.date(),
        content_time=signed.time().replace(microsecond=0),
        specific_character_set="ISO_IR 192",  # UTF-8: names and text are not ASCII-only
        coding_schemes=[CodingSchemeIdentificationItem(LOCAL_SCHEME, name="MedPortal local codes")],
    )
    if not has_dicom:
        del sr.CurrentRequestedProcedureEvidenceSequence
    sr.VerifyingObserverSequence = [
        _verifier(content.report.signed_by, content.signed_at, content.institution_name),
        *(_verifier(a.signed_by, a.signed_at, content.institution_name) for a in content.addenda),
    ]
    return sr


def _verifier(user, when, organization: str) -> Dataset:
    item = Dataset()
    item.VerifyingObserverName = person_name(user)
    item.VerifyingOrganization = organization[:64]
    item.VerificationDateTime = _dt(when)
    item.VerifyingObserverIdentificationCodeSequence = []
    return item


def _dt(when) -> DT:
    """A DICOM DT to the second, with the UTC offset."""
    return DT(timezone.localtime(when).replace(microsecond=0))


def sr_bytes(sr: Dataset) -> bytes:
    out = io.BytesIO()
    sr.save_as(out, enforce_file_format=True)
    return out.getvalue()
