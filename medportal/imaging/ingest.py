"""The one way images enter MedPortal: validate, store by hash, write rows, audit."""

from __future__ import annotations

import datetime
import io
import re
from dataclasses import dataclass, field

import pydicom
from django.conf import settings
from django.db import transaction
from PIL import Image
from pydicom.uid import generate_uid

from medportal.audit.models import Action, EventType, Outcome
from medportal.audit.services import audit_record
from medportal.imaging.auditing import study_audit
from medportal.imaging.deidentify import (
    DeidentificationRefused,
    DeidOptions,
    deidentification_key,
    instance_deidentify,
)
from medportal.imaging.models import Instance, Patient, Priority, Series, Study
from medportal.imaging.pixels import frame_of
from medportal.imaging.storage import blob_put

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
# Modalities a plain PNG/JPEG may be declared as.
# A PNG or JPEG says nothing of its body part: it is blank until someone sets it on the study
# page (the draft is refused until then; medportal.imaging.body_part), and no label claims one.
IMAGE_MODALITIES = {"CR": "X-ray (CR)", "DX": "X-ray (DX)", "CT": "CT slice", "MR": "MR slice"}


class IngestError(Exception):
    """A file was refused; the message says why, in words a user understands."""


@dataclass
class IncomingFile:
    name: str
    data: bytes
    # Set by a caller that has already refused the file (a zip over a limit, a STOW part for
    # another study), so the refusal is reported and audited like any other.
    refusal: str = ""


@dataclass
class Rejection:
    name: str
    reason: str


@dataclass
class IngestResult:
    studies: list[Study] = field(default_factory=list)
    stored: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)


@dataclass
class _Parsed:
    name: str
    stored_bytes: bytes
    content_type: str
    patient: dict
    study: dict
    series: dict
    instance: dict


_UID = re.compile(r"[0-9.]{1,64}")


def uid_acceptable(value: str) -> bool:
    """Digits and dots, at most 64 (PS3.5 9.1). Leading zeros in a component are tolerated:
    real archives hold such UIDs; anything else could not go into a URL or a query safely."""
    return bool(_UID.fullmatch(value))


def _text(ds, keyword: str, limit: int = 64) -> str:
    value = ds.get(keyword, "")
    return str(value if value is not None else "").strip()[:limit]


def _dicom_date(value: str) -> datetime.date | None:
    try:
        return datetime.datetime.strptime(value, "%Y%m%d").date()
    except (TypeError, ValueError):
        return None


# Requested Procedure Priority (0040,1003): STAT, HIGH, ROUTINE, MEDIUM, LOW.
_DICOM_PRIORITIES = {
    "STAT": Priority.STAT,
    "HIGH": Priority.URGENT,
    "ROUTINE": Priority.ROUTINE,
    "MEDIUM": Priority.ROUTINE,
    "LOW": Priority.ROUTINE,
}


def _dicom_priority(ds) -> Priority:
    return _DICOM_PRIORITIES.get(_text(ds, "RequestedProcedurePriority").upper(), Priority.ROUTINE)


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _check_image_size(ds) -> None:
    """Refuse before decoding what would take absurd memory, or pixels shorter than the header says."""
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.BitsAllocated)
    except Exception:  # missing or malformed image attributes
        raise IngestError(
            "DICOM image attributes (Rows, Columns, Bits Allocated) are missing or invalid"
        ) from None
    pixels = rows * columns * frames * samples
    if not (rows > 0 and columns > 0 and frames > 0 and samples in (1, 3) and bits in (1, 8, 16, 32, 64)):
        raise IngestError(f"DICOM image has impossible dimensions ({rows}x{columns}, {frames} frames)")
    if pixels > settings.MAX_IMAGE_PIXELS:
        raise IngestError(
            f"DICOM image is too large to show ({pixels:,} pixels; limit {settings.MAX_IMAGE_PIXELS:,})"
        )
    transfer_syntax = getattr(ds.file_meta, "TransferSyntaxUID", None)
    if transfer_syntax is not None and not transfer_syntax.is_compressed:
        expected = (pixels * bits + 7) // 8
        if len(ds.PixelData) < expected:
            raise IngestError(f"DICOM pixel data is cut short ({len(ds.PixelData):,} of {expected:,} bytes)")


def _parse_dicom(incoming: IncomingFile) -> _Parsed:
    if len(incoming.data) < 132 or incoming.data[128:132] != b"DICM":
        raise IngestError("not a DICOM Part-10 file (no DICM marker)")
    try:
        ds = pydicom.dcmread(io.BytesIO(incoming.data))
        missing = [k for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID") if not _text(ds, k)]
    except RecursionError:
        raise IngestError("unreadable DICOM: sequences nested too deeply") from None
    except Exception as exc:  # pydicom raises many types for malformed data
        raise IngestError(f"unreadable DICOM: {exc}") from None
    if missing:
        raise IngestError(f"DICOM file lacks {', '.join(missing)}")
    invalid = [
        k
        for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
        if not uid_acceptable(str(ds.get(k)).strip())
    ]
    if invalid:
        raise IngestError(f"its {', '.join(invalid)} is not a valid DICOM UID (digits and dots, at most 64)")
    if "PixelData" not in ds:
        raise IngestError("DICOM file has no image (no Pixel Data)")
    try:
        _check_image_size(ds)
    except IngestError:
        raise
    except Exception as exc:  # a corrupt transfer syntax or pixel element fails when read
        raise IngestError(f"unreadable DICOM image attributes: {exc}") from None
    try:
        # Decoding proves the pixels are whole: pydicom reads some truncated files without complaint.
        frame_of(ds, 0)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # decoders raise many types; a Rust decoder's panic is a BaseException
        raise IngestError(f"DICOM image cannot be decoded: {exc}") from None
    # The preamble is never trusted (PE/ELF polyglots): store it zeroed.
    stored = bytes(128) + incoming.data[128:]
    try:
        return _dicom_parsed(incoming, ds, stored)
    except Exception as exc:  # pydicom converts values lazily: a corrupt element fails only here
        raise IngestError(f"unreadable DICOM header: {exc}") from None


def _dicom_parsed(incoming: IncomingFile, ds, stored: bytes) -> _Parsed:
    return _Parsed(
        name=incoming.name,
        stored_bytes=stored,
        content_type=Instance.DICOM,
        patient={
            "patient_id": _text(ds, "PatientID") or "UNKNOWN",
            "name": str(ds.get("PatientName", "") or "").replace("^", " ").strip()[:200],
            "birth_date": _text(ds, "PatientBirthDate", 8),
            "sex": _text(ds, "PatientSex", 16),
        },
        study={
            "study_uid": _text(ds, "StudyInstanceUID"),
            "accession_number": _text(ds, "AccessionNumber"),
            "study_date": _dicom_date(_text(ds, "StudyDate")),
            "description": _text(ds, "StudyDescription", 200),
            "modality": _text(ds, "Modality", 16),
            "body_part": _text(ds, "BodyPartExamined"),
            "priority": _dicom_priority(ds),
            "indication": " ".join(
                filter(
                    None,
                    [
                        _text(ds, "ReasonForTheRequestedProcedure", 1000),
                        _text(ds, "AdditionalPatientHistory", 1000),
                    ],
                )
            ),
        },
        series={
            "series_uid": _text(ds, "SeriesInstanceUID"),
            "modality": _text(ds, "Modality", 16),
            "body_part": _text(ds, "BodyPartExamined"),
            "description": _text(ds, "SeriesDescription", 200),
            "series_number": _int_or_none(ds.get("SeriesNumber")),
        },
        instance={
            "sop_instance_uid": _text(ds, "SOPInstanceUID"),
            "instance_number": _int_or_none(ds.get("InstanceNumber")),
            "rows": _int_or_none(ds.get("Rows")),
            "columns": _int_or_none(ds.get("Columns")),
            "number_of_frames": _int_or_none(ds.get("NumberOfFrames")) or 1,
            "photometric_interpretation": _text(ds, "PhotometricInterpretation", 32),
            "view_position": _text(ds, "ViewPosition", 16),
        },
    )


def _parse_plain_image(incoming: IncomingFile, modality: str) -> _Parsed:
    content_type = Instance.PNG if incoming.data.startswith(PNG_MAGIC) else Instance.JPEG
    try:
        with Image.open(io.BytesIO(incoming.data)) as image:
            image.load()  # decodes every byte: a truncated file fails here
            width, height = image.size
            mode = image.mode
    except Exception as exc:  # PIL raises many types for broken images
        raise IngestError(f"image cannot be decoded: {exc}") from None
    study_uid = generate_uid()
    return _Parsed(
        name=incoming.name,
        stored_bytes=incoming.data,
        content_type=content_type,
        patient={"patient_id": "UNKNOWN", "name": "", "birth_date": "", "sex": ""},
        study={
            "study_uid": study_uid,
            "accession_number": "",
            "study_date": None,
            "description": f"{IMAGE_MODALITIES[modality]} ({content_type.removeprefix('image/')})",
            "modality": modality,
            "body_part": "",
            "priority": Priority.ROUTINE,
            "indication": "",
        },
        series={
            "series_uid": generate_uid(),
            "modality": modality,
            "body_part": "",
            "description": "",
            "series_number": 1,
        },
        instance={
            "sop_instance_uid": generate_uid(),
            "instance_number": 1,
            "rows": height,
            "columns": width,
            "number_of_frames": 1,
            "photometric_interpretation": "RGB" if mode in {"RGB", "RGBA", "P"} else "MONOCHROME2",
            "view_position": "",
        },
    )


def parse_file(incoming: IncomingFile, *, image_modality: str = "DX") -> _Parsed:
    """Validate one file by its content (never its name) and read what the rows need."""
    if incoming.refusal:
        raise IngestError(incoming.refusal)
    size = len(incoming.data)
    if size == 0:
        raise IngestError("the file is empty")
    if size > settings.MAX_UPLOAD_FILE_BYTES:
        raise IngestError(
            f"the file is {size:,} bytes; the limit is {settings.MAX_UPLOAD_FILE_BYTES:,} bytes"
        )
    if incoming.data[128:132] == b"DICM":
        return _parse_dicom(incoming)
    if incoming.data.startswith(PNG_MAGIC) or incoming.data.startswith(JPEG_MAGIC):
        if image_modality not in IMAGE_MODALITIES:
            raise IngestError(f"unknown modality {image_modality!r} for a plain image")
        return _parse_plain_image(incoming, image_modality)
    raise IngestError("not a DICOM Part-10 file, PNG or JPEG")


def _deidentified(parsed: _Parsed) -> _Parsed:
    """A DICOM instance de-identified before it is stored (MEDPORTAL_DEIDENTIFY_ON_INGEST_SOURCES):
    its rows are read again from the de-identified header (which validates it once more), and the
    uploaded file name, which may name the patient, is not kept."""
    try:
        data = instance_deidentify(
            data=parsed.stored_bytes, key=deidentification_key(), options=DeidOptions()
        )
    except DeidentificationRefused as exc:
        raise IngestError(f"cannot be de-identified: {exc}") from None
    return _parse_dicom(IncomingFile(name="", data=data))


def _store(
    parsed: _Parsed,
    *,
    uploader,
    indication: str,
    priority: Priority | None,
    result: IngestResult,
    new_studies: dict,
) -> None:
    owner = Series.objects.filter(series_uid=parsed.series["series_uid"]).values_list(
        "study__study_uid", flat=True
    )
    if owner and owner[0] != parsed.study["study_uid"]:
        raise IngestError("its Series Instance UID already belongs to another study (conflicting UIDs)")
    if Instance.objects.filter(sop_instance_uid=parsed.instance["sop_instance_uid"]).exists():
        result.duplicates += 1
        study = Study.objects.get(series__instances__sop_instance_uid=parsed.instance["sop_instance_uid"])
        new_studies.setdefault(study.pk, (study, False))
        return
    sha256 = blob_put(parsed.stored_bytes)
    patient, _ = Patient.objects.get_or_create(
        patient_id=parsed.patient["patient_id"],
        defaults={k: v for k, v in parsed.patient.items() if k != "patient_id"},
    )
    study_fields = {k: v for k, v in parsed.study.items() if k != "study_uid"}
    if indication:
        study_fields["indication"] = indication
    if priority is not None:  # the uploader's choice wins over the header's
        study_fields["priority"] = priority
    study, created = Study.objects.get_or_create(
        study_uid=parsed.study["study_uid"],
        defaults={**study_fields, "patient": patient, "uploaded_by": uploader},
    )
    series, _ = Series.objects.get_or_create(
        series_uid=parsed.series["series_uid"],
        defaults={**{k: v for k, v in parsed.series.items() if k != "series_uid"}, "study": study},
    )
    Instance.objects.create(
        series=series,
        content_type=parsed.content_type,
        sha256=sha256,
        size_bytes=len(parsed.stored_bytes),
        original_name=parsed.name[:255],
        **parsed.instance,
    )
    result.stored += 1
    if study.pk not in new_studies:
        new_studies[study.pk] = (study, created)


def study_ingest(
    *,
    files: list[IncomingFile],
    uploader,
    indication: str = "",
    image_modality: str = "DX",
    priority: Priority | None = None,
    request=None,
    source: str = "upload",
) -> tuple[IngestResult, list[Study]]:
    """Take in files; return the result and the studies created by this call.

    Each file is validated on its own: a refused file leaves no row and no blob
    and does not affect the others. The rows of accepted files are written in
    one transaction. ``priority``, when given, sets a new study's priority; else
    the DICOM header's Requested Procedure Priority does, else routine.
    """
    result = IngestResult()
    if not files:
        raise IngestError("no files were uploaded")
    if len(files) > settings.MAX_UPLOAD_FILES:
        raise IngestError(f"{len(files)} files were sent; the limit is {settings.MAX_UPLOAD_FILES}")
    parsed_files: list[_Parsed] = []
    deidentify = source in settings.MEDPORTAL_DEIDENTIFY_ON_INGEST_SOURCES

    def refuse(name: str, exc: IngestError) -> None:
        result.rejected.append(Rejection(name, str(exc)))
        audit_record(
            event_type=EventType.IMPORT,
            action=Action.CREATE,
            outcome=Outcome.MINOR_FAILURE,
            description="File refused",
            request=request,
            user=uploader,
            object_type="file",
            detail={"name": name[:255], "reason": str(exc), "source": source},
        )

    for incoming in files:
        try:
            parsed = parse_file(incoming, image_modality=image_modality)
            if deidentify and parsed.content_type == Instance.DICOM:
                parsed = _deidentified(parsed)
            parsed_files.append(parsed)
        except IngestError as exc:
            refuse(incoming.name, exc)
    touched: dict[int, tuple[Study, bool]] = {}
    with transaction.atomic():
        for parsed in parsed_files:
            try:
                _store(
                    parsed,
                    uploader=uploader,
                    indication=indication.strip(),
                    priority=priority,
                    result=result,
                    new_studies=touched,
                )
            except IngestError as exc:  # raised before any row of this file is written
                refuse(parsed.name, exc)
    result.studies = [study for study, _ in touched.values()]
    for study in result.studies:
        study_audit(
            study,
            "Instances received",
            event_type=EventType.IMPORT,
            action=Action.CREATE,
            request=request,
            user=uploader,
            detail={"source": source, "stored": result.stored, "duplicates": result.duplicates},
        )
    created = [study for study, was_created in touched.values() if was_created]
    return result, created
