"""What a PNG or JPEG upload must say about itself, since it has no DICOM header: the modality,
the body part, the patient's name and MRN, and the accession number.

A technologist photographing or exporting a picture knows whom and what it shows; without that,
such studies cannot be told apart on the worklist (they all used to be one patient "UNKNOWN").
So the modality, the body part and the patient's name are required. The MRN is taken as given
(an existing patient with that MRN must have that name); left blank, MedPortal makes one up,
marked ``NOMRN-``, so the picture's patient is nobody else's. A blank accession number stays
blank: an invented one would pose as a real order (and go to the EHR as the filler order number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medportal.imaging.ingest import IMAGE_MODALITIES, PictureDetails, is_picture

# DICOM Body Part Examined (PS3.16 Annex L) terms offered first; any other text is taken too.
BODY_PARTS = [
    ("CHEST", "Chest"),
    ("ABDOMEN", "Abdomen"),
    ("PELVIS", "Pelvis"),
    ("HEAD", "Head"),
    ("SKULL", "Skull"),
    ("NECK", "Neck"),
    ("SPINE", "Spine"),
    ("CSPINE", "Cervical spine"),
    ("TSPINE", "Thoracic spine"),
    ("LSPINE", "Lumbar spine"),
    ("SHOULDER", "Shoulder"),
    ("HUMERUS", "Humerus (upper arm)"),
    ("ELBOW", "Elbow"),
    ("FOREARM", "Forearm"),
    ("WRIST", "Wrist"),
    ("HAND", "Hand"),
    ("HIP", "Hip"),
    ("FEMUR", "Femur (thigh)"),
    ("KNEE", "Knee"),
    ("TIBIA", "Tibia / fibula (lower leg)"),
    ("ANKLE", "Ankle"),
    ("FOOT", "Foot"),
]
_BODY_PART = re.compile(r"[A-Z0-9 ]{1,64}")
_IDENTIFIER = re.compile(r"[^\\\x00-\x1f\x7f]{1,64}")  # an MRN or accession: no backslash or controls


class PictureDetailsError(ValueError):
    """What is missing or wrong, by field name."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass
class PictureFields:
    modality: str = ""
    body_part: str = ""
    patient_name: str = ""
    patient_id: str = ""
    accession_number: str = ""


def picture_details(fields: PictureFields) -> PictureDetails:
    """The details of a picture upload, checked; PictureDetailsError says what to fix."""
    errors: dict[str, str] = {}
    modality = fields.modality.strip().upper()
    if not modality:
        errors["modality"] = "Choose the modality of the picture."
    elif modality not in IMAGE_MODALITIES:
        errors["modality"] = f"The modality of a picture is one of {', '.join(IMAGE_MODALITIES)}."
    body_part = " ".join(fields.body_part.upper().split())
    if not body_part:
        errors["body_part"] = "Say which body part the picture shows."
    elif not _BODY_PART.fullmatch(body_part):
        errors["body_part"] = "A body part is letters, digits and spaces, at most 64."
    name = " ".join(fields.patient_name.split())
    if not name:
        errors["patient_name"] = "Give the patient's name."
    elif len(name) > 200:
        errors["patient_name"] = "The patient's name is at most 200 characters."
    patient_id, accession = fields.patient_id.strip(), fields.accession_number.strip()
    if patient_id and not _IDENTIFIER.fullmatch(patient_id):
        errors["patient_id"] = "An MRN is at most 64 characters, without backslashes."
    if accession and not _IDENTIFIER.fullmatch(accession):
        errors["accession_number"] = "An accession number is at most 64 characters, without backslashes."
    if errors:
        raise PictureDetailsError(errors)
    return PictureDetails(
        modality=modality,
        body_part=body_part,
        patient_name=name,
        patient_id=patient_id,
        accession_number=accession,
    )


def has_picture(files: list[tuple[str, bytes]]) -> bool:
    """Whether any file, by its (name, first bytes), is a PNG or JPEG to take as a picture (one
    named like a DICOM file is refused by ingest as not DICOM, and asks for nothing)."""
    return any(is_picture(head) and not name.lower().endswith((".dcm", ".dicom")) for name, head in files)
