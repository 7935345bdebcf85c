"""DICOM JSON (PS3.18 F.2) for DICOMweb: query results, metadata and the STOW-RS response."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset

# The attributes a QIDO-RS result carries at each level (PS3.18 Table 6.7.1-2, -2a, -2b).
STUDY_ATTRIBUTES = (
    "SpecificCharacterSet",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyID",
    "StudyDescription",
)
SERIES_ATTRIBUTES = (
    "SpecificCharacterSet",
    "Modality",
    "SeriesDescription",
    "SeriesInstanceUID",
    "SeriesNumber",
    "BodyPartExamined",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
)
INSTANCE_ATTRIBUTES = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "Rows",
    "Columns",
    "BitsAllocated",
    "NumberOfFrames",
)

# Failure Reason (0008,1197) values, PS3.18 Table I.2-2.
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH = 0xA900  # also used when an instance belongs to another study than the target
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111  # stored already with other content (PS3.7 C.4.2.1.10)
SOP_CLASS_NOT_SUPPORTED = 0x0122


def metadata_json(header: Dataset) -> dict:
    """An instance's attributes (Pixel Data left out), all values inline."""
    return header.to_json_dict(suppress_invalid_tags=True)


def result_json(
    header: Dataset, *, keywords: Iterable[str], include_all: bool = False, computed: Dataset | None = None
) -> dict:
    """One query result: ``keywords`` from ``header`` (present but empty when the header lacks them),
    every attribute of it when ``include_all``, and the ``computed`` ones (counts, URLs)."""
    out = Dataset()
    if include_all:
        for element in header:
            out[element.tag] = element
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        if tag is None:
            continue
        if tag in header:
            out[tag] = header[tag]
        elif tag not in out:
            out.add_new(tag, dictionary_VR(tag), None)
    for element in computed or ():
        out[element.tag] = element
    return out.to_json_dict(suppress_invalid_tags=True)


@dataclass
class StoredPart:
    sop_class_uid: str
    sop_instance_uid: str
    retrieve_url: str


@dataclass
class FailedPart:
    sop_class_uid: str
    sop_instance_uid: str
    reason_code: int
    reason: str


def store_response_json(*, retrieve_url: str, stored: list[StoredPart], failed: list[FailedPart]) -> dict:
    """The Store Instances Response Module (PS3.18 Annex I) as DICOM JSON."""
    response = Dataset()
    response.RetrieveURL = retrieve_url or None
    if failed:
        response.FailedSOPSequence = [_failed_item(part) for part in failed]
    if stored:
        response.ReferencedSOPSequence = [_stored_item(part) for part in stored]
    return response.to_json_dict(suppress_invalid_tags=True)


def _stored_item(part: StoredPart) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = part.sop_class_uid or None
    item.ReferencedSOPInstanceUID = part.sop_instance_uid or None
    item.RetrieveURL = part.retrieve_url
    return item


def _failed_item(part: FailedPart) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = part.sop_class_uid or None
    item.ReferencedSOPInstanceUID = part.sop_instance_uid or None
    item.FailureReason = part.reason_code
    # Error Comment is LO (64 characters): the whole reason is in the audit trail.
    item.ErrorComment = part.reason[:64]
    return item
