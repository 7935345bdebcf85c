"""The one way images enter MedPortal: validate, store by hash, write rows, audit."""

from __future__ import annotations

import datetime
import hashlib
import io
import re
import uuid
from dataclasses import dataclass, field

import numpy as np
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
from medportal.imaging.dicom_scan import NATIVE, PIXEL_DATA, DicomStructureError, Scanned, dicom_scan
from medportal.imaging.models import Instance, Patient, Priority, Series, Study
from medportal.imaging.pixels import frame_of
from medportal.imaging.storage import blob_put, blob_read

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
# Modalities a plain PNG/JPEG may be declared as.
# A PNG or JPEG says nothing of its body part: the uploader names it (intake.pictures); the
# draft never assumes one (medportal.imaging.body_part).
IMAGE_MODALITIES = {"CR": "Radiograph (CR)", "DX": "Radiograph (DX)", "CT": "CT slice", "MR": "MR slice"}
# Modalities of objects that are not images: a study that began with one of them takes the
# modality and body part of its first image.
NON_IMAGE_MODALITIES = {"SR", "PR", "KO", "DOC", "RTPLAN", "RTSTRUCT", "RTRECORD", "RTDOSE", "ECG", "HD"}
# Marks an MRN that MedPortal made up for a picture uploaded without one.
GENERATED_MRN_PREFIX = "NOMRN-"

# Tags ingest reads (see dicom_scan.WANTED).
SOP_CLASS_UID, SOP_INSTANCE_UID = 0x00080016, 0x00080018
STUDY_UID, SERIES_UID = 0x0020000D, 0x0020000E
STUDY_DATE, ACCESSION, MODALITY = 0x00080020, 0x00080050, 0x00080060
STUDY_DESCRIPTION, SERIES_DESCRIPTION = 0x00081030, 0x0008103E
PATIENT_NAME, PATIENT_ID, PATIENT_BIRTH_DATE, PATIENT_SEX = 0x00100010, 0x00100020, 0x00100030, 0x00100040
HISTORY, BODY_PART, VIEW_POSITION = 0x001021B0, 0x00180015, 0x00185101
SERIES_NUMBER, INSTANCE_NUMBER = 0x00200011, 0x00200013
SAMPLES_PER_PIXEL, PHOTOMETRIC, NUMBER_OF_FRAMES = 0x00280002, 0x00280004, 0x00280008
ROWS, COLUMNS = 0x00280010, 0x00280011
BITS_ALLOCATED, BITS_STORED, HIGH_BIT = 0x00280100, 0x00280101, 0x00280102
REASON, PRIORITY = 0x00401002, 0x00401003
_REQUIRED_UIDS = {
    "SOPInstanceUID": SOP_INSTANCE_UID,
    "StudyInstanceUID": STUDY_UID,
    "SeriesInstanceUID": SERIES_UID,
}


class IngestError(Exception):
    """A file was refused; the message says why, in words a user understands."""


class IngestConflict(IngestError):
    """An instance whose SOP Instance UID is stored already, with other content."""


@dataclass(frozen=True)
class PictureDetails:
    """What a DICOM header would say about a PNG or JPEG, asked of the person uploading it."""

    modality: str = "DX"
    body_part: str = ""
    patient_name: str = ""
    patient_id: str = ""  # the MRN; blank: one is made up, marked GENERATED_MRN_PREFIX
    accession_number: str = ""  # blank stays blank: an invented one would pose as a real order


@dataclass
class _PictureUids:
    """The pictures of one upload are one study and one series of one patient."""

    study_uid: str
    series_uid: str
    patient_id: str
    count: int = 0

    @classmethod
    def new(cls, picture: PictureDetails) -> _PictureUids:
        patient_id = picture.patient_id or f"{GENERATED_MRN_PREFIX}{uuid.uuid4().hex[:10].upper()}"
        return cls(study_uid=generate_uid(), series_uid=generate_uid(), patient_id=patient_id)


@dataclass
class IncomingFile:
    name: str
    data: bytes
    # Set by a caller that has already refused the file (a zip over a limit, a STOW part for
    # another study), so the refusal is reported and audited like any other.
    refusal: str = ""
    # Set by a caller that has parsed the file already (STOW-RS, DIMSE): not parsed again.
    parsed: _Parsed | None = None


@dataclass
class Rejection:
    name: str
    reason: str
    conflict: bool = False  # same SOP Instance UID as a stored instance, other content


@dataclass
class IngestResult:
    studies: list[Study] = field(default_factory=list)
    stored: int = 0
    duplicates: int = 0
    duplicate_names: list[str] = field(default_factory=list)  # the files that were duplicates
    rejected: list[Rejection] = field(default_factory=list)
    # Studies that got their first image from this call (new studies with an image among them):
    # those to draft. A study of only a dose report or a presentation state waits for its images.
    first_images: set[int] = field(default_factory=set)


@dataclass
class _Parsed:
    name: str
    stored_bytes: bytes
    content_type: str
    patient: dict
    study: dict
    series: dict
    instance: dict
    picture: bool = False

    @property
    def sop_instance_uid(self) -> str:
        return self.instance["sop_instance_uid"]


_UID = re.compile(r"[0-9.]{1,64}")


def uid_acceptable(value: str) -> bool:
    """Digits and dots, at most 64 (PS3.5 9.1). Leading zeros in a component are tolerated:
    real archives hold such UIDs; anything else could not go into a URL or a query safely."""
    return bool(_UID.fullmatch(value))


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


# Photometric interpretations and the samples per pixel they need (PS3.3 C.7.6.3.1.2).
_ONE_SAMPLE = {"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"}
_THREE_SAMPLES = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"}
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"  # has Pixel Data, but a dose grid is not a picture


def _check_image(scanned: Scanned) -> None:
    """Refuse what would take absurd memory to show, attributes that contradict each other, and
    native pixel data whose length does not match its attributes."""
    rows, columns = scanned.number(ROWS), scanned.number(COLUMNS)
    bits = scanned.number(BITS_ALLOCATED)
    if rows is None or columns is None or bits is None:
        raise IngestError("DICOM image attributes (Rows, Columns, Bits Allocated) are missing or invalid")
    frames = scanned.number(NUMBER_OF_FRAMES) or 1
    samples = scanned.number(SAMPLES_PER_PIXEL) or 1
    stored_bits = scanned.number(BITS_STORED) or bits
    high_bit = scanned.number(HIGH_BIT)
    photometric = scanned.text(PHOTOMETRIC, 32).upper()
    if not (rows > 0 and columns > 0 and frames > 0 and samples in (1, 3) and bits in (1, 8, 16, 32, 64)):
        raise IngestError(
            f"DICOM image has impossible dimensions ({rows}x{columns}, {frames} frames, "
            f"{samples} samples of {bits} bits)"
        )
    if not 1 <= stored_bits <= bits or (high_bit is not None and high_bit >= bits):
        raise IngestError(
            f"DICOM image attributes contradict each other (Bits Allocated {bits}, Bits Stored "
            f"{stored_bits}, High Bit {high_bit})"
        )
    if (photometric in _ONE_SAMPLE and samples != 1) or (photometric in _THREE_SAMPLES and samples != 3):
        raise IngestError(f"DICOM image is {photometric} but has {samples} samples per pixel")
    pixels = rows * columns * frames * samples
    if pixels > settings.MAX_IMAGE_PIXELS:
        raise IngestError(
            f"DICOM image is too large to show ({pixels:,} pixels; limit {settings.MAX_IMAGE_PIXELS:,})"
        )
    element = scanned.pixels
    if element is None or element.encapsulated:
        return
    per_pixel = 2 * bits if photometric == "YBR_FULL_422" and samples == 3 else samples * bits
    expected = (rows * columns * frames * per_pixel + 7) // 8
    frame_bytes = max(expected // frames, 1)
    if element.length < expected:
        raise IngestError(f"DICOM pixel data is cut short ({element.length:,} of {expected:,} bytes)")
    # Padding (to an even length, or a little more) is tolerated; a whole frame more means the
    # attributes describe other pixels than these (16-bit data declared as 8, colour as grey).
    if element.length - expected >= frame_bytes:
        raise IngestError(
            f"DICOM pixel data is {element.length:,} bytes, but Rows, Columns, Samples per Pixel, Bits "
            f"Allocated and Number of Frames describe {expected:,}"
        )


def _parse_dicom(incoming: IncomingFile) -> _Parsed:
    """Check the file's structure and image attributes, and read what the rows need, in one pass
    over its bytes; only compressed pixel data is decoded (to prove it is whole)."""
    data = incoming.data
    if len(data) < 132 or data[128:132] != b"DICM":
        raise IngestError("not a DICOM Part-10 file (no DICM marker)")
    try:
        scanned = dicom_scan(data, max_inflated_bytes=settings.MAX_UPLOAD_FILE_BYTES)
    except DicomStructureError as exc:
        raise IngestError(f"DICOM file is broken: {exc}") from None
    uids = {keyword: scanned.text(tag) for keyword, tag in _REQUIRED_UIDS.items()}
    missing = [keyword for keyword, value in uids.items() if not value]
    if missing:
        raise IngestError(f"DICOM file lacks {', '.join(missing)}")
    sop_class = scanned.text(SOP_CLASS_UID) or scanned.media_sop_class
    invalid = [keyword for keyword, value in uids.items() if not uid_acceptable(value)]
    if sop_class and not uid_acceptable(sop_class):
        invalid.append("SOPClassUID")
    if invalid:
        raise IngestError(f"its {', '.join(invalid)} is not a valid DICOM UID (digits and dots, at most 64)")
    has_pixels = scanned.pixels is not None and scanned.pixels.tag == PIXEL_DATA
    is_image = has_pixels and sop_class != RT_DOSE_STORAGE
    if has_pixels:
        _check_image(scanned)
        if scanned.pixels.encapsulated or scanned.transfer_syntax not in NATIVE:
            _decode_check(data)
    # The preamble is never trusted (PE/ELF polyglots): store it zeroed.
    return _dicom_parsed(incoming, scanned, bytes(128) + data[128:], sop_class=sop_class, is_image=is_image)


def _decode_check(data: bytes) -> None:
    """Decoding proves compressed pixels whole: a stream can be cut inside a fragment."""
    try:
        frame_of(pydicom.dcmread(io.BytesIO(data)), 0)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # decoders raise many types; a Rust decoder's panic is a BaseException
        raise IngestError(f"DICOM image cannot be decoded: {exc}") from None


def _dicom_parsed(incoming: IncomingFile, scanned: Scanned, stored: bytes, *, sop_class: str, is_image: bool):
    text, number = scanned.text, scanned.number
    image = scanned.pixels is not None and scanned.pixels.tag == PIXEL_DATA
    return _Parsed(
        name=incoming.name,
        stored_bytes=stored,
        content_type=Instance.DICOM,
        patient={
            "patient_id": text(PATIENT_ID) or "UNKNOWN",
            "name": text(PATIENT_NAME, 400).replace("^", " ").strip()[:200],
            "birth_date": text(PATIENT_BIRTH_DATE, 8),
            "sex": text(PATIENT_SEX, 16),
        },
        study={
            "study_uid": text(STUDY_UID),
            "accession_number": text(ACCESSION),
            "study_date": _dicom_date(text(STUDY_DATE)),
            "description": text(STUDY_DESCRIPTION, 200),
            "modality": text(MODALITY, 16),
            "body_part": text(BODY_PART),
            "priority": _DICOM_PRIORITIES.get(text(PRIORITY).upper(), Priority.ROUTINE),
            "indication": " ".join(filter(None, [text(REASON, 1000), text(HISTORY, 1000)])),
        },
        series={
            "series_uid": text(SERIES_UID),
            "modality": text(MODALITY, 16),
            "body_part": text(BODY_PART),
            "description": text(SERIES_DESCRIPTION, 200),
            "series_number": number(SERIES_NUMBER),
        },
        instance={
            "sop_instance_uid": text(SOP_INSTANCE_UID),
            "sop_class_uid": sop_class,
            "is_image": is_image,
            "instance_number": number(INSTANCE_NUMBER),
            "rows": number(ROWS) if image else None,
            "columns": number(COLUMNS) if image else None,
            "number_of_frames": (number(NUMBER_OF_FRAMES) or 1) if image else 1,
            "photometric_interpretation": text(PHOTOMETRIC, 32) if image else "",
            "view_position": text(VIEW_POSITION, 16),
        },
    )


def _parse_plain_image(incoming: IncomingFile, picture: PictureDetails, uids: _PictureUids) -> _Parsed:
    content_type = Instance.PNG if incoming.data.startswith(PNG_MAGIC) else Instance.JPEG
    try:
        with Image.open(io.BytesIO(incoming.data)) as image:
            image.load()  # decodes every byte: a truncated file fails here
            width, height = image.size
            mode = image.mode
    except Exception as exc:  # PIL raises many types for broken images
        raise IngestError(f"image cannot be decoded: {exc}") from None
    modality = picture.modality
    # Never assumed: a picture without one is stored without one, and not drafted until it is set.
    body_part = picture.body_part
    label = IMAGE_MODALITIES[modality]
    kind = content_type.removeprefix("image/")
    uids.count += 1
    return _Parsed(
        name=incoming.name,
        stored_bytes=incoming.data,
        content_type=content_type,
        patient={"patient_id": uids.patient_id, "name": picture.patient_name, "birth_date": "", "sex": ""},
        study={
            "study_uid": uids.study_uid,
            "accession_number": picture.accession_number,
            "study_date": None,
            "description": f"{label} of {body_part.lower()} ({kind})" if body_part else f"{label} ({kind})",
            "modality": modality,
            "body_part": body_part,
            "priority": Priority.ROUTINE,
            "indication": "",
        },
        series={
            "series_uid": uids.series_uid,
            "modality": modality,
            "body_part": body_part,
            "description": "",
            "series_number": 1,
        },
        instance={
            "sop_instance_uid": generate_uid(),
            "sop_class_uid": "",
            "is_image": True,
            "instance_number": uids.count,
            "rows": height,
            "columns": width,
            "number_of_frames": 1,
            "photometric_interpretation": "RGB" if mode in {"RGB", "RGBA", "P"} else "MONOCHROME2",
            "view_position": "",
        },
        picture=True,
    )


def parse_file(
    incoming: IncomingFile,
    *,
    image_modality: str = "DX",
    picture: PictureDetails | None = None,
    picture_uids: _PictureUids | None = None,
) -> _Parsed:
    """Validate one file by its content (its name only to refuse a picture posing as DICOM) and
    read what the rows need."""
    if incoming.parsed is not None:
        return incoming.parsed
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
    if is_picture(incoming.data):
        kind = "PNG" if incoming.data.startswith(PNG_MAGIC) else "JPEG"
        if incoming.name.lower().endswith((".dcm", ".dicom")):
            raise IngestError(f"not DICOM: it is a {kind} image named like a DICOM file")
        picture = picture or PictureDetails(modality=image_modality)
        if picture.modality not in IMAGE_MODALITIES:
            raise IngestError(f"unknown modality {picture.modality!r} for a plain image")
        return _parse_plain_image(incoming, picture, picture_uids or _PictureUids.new(picture))
    raise IngestError("not a DICOM Part-10 file, PNG or JPEG")


def is_picture(data: bytes) -> bool:
    """A PNG or JPEG by its first bytes."""
    return data.startswith(PNG_MAGIC) or data.startswith(JPEG_MAGIC)


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


def _same_content(stored: bytes, incoming: bytes) -> bool:
    """Whether two files of one SOP Instance UID hold the same instance: every attribute but the
    file meta and trailing padding equal, and the same decoded pixels (another transfer syntax of
    the same image is the same instance; a lossy re-encoding or an edited header is not)."""
    try:
        first, second = (pydicom.dcmread(io.BytesIO(data)) for data in (stored, incoming))

        def attributes(ds) -> dict:
            return {element.tag: element.value for element in ds if element.tag.group not in (0x7FE0, 0xFFFC)}

        if attributes(first) != attributes(second):
            return False
        if ("PixelData" in first) != ("PixelData" in second):
            return False
        return "PixelData" not in first or bool(np.array_equal(first.pixel_array, second.pixel_array))
    except Exception:  # what cannot be compared is not shown to be the same
        return False


def _blob_or_nothing(sha256: str) -> bytes:
    """A stored blob; nothing when it cannot be read (then nothing shows the content the same)."""
    try:
        return blob_read(sha256)
    except OSError:
        return b""


class _Writer:
    """Writes the rows of one call's accepted files, looking up what exists once per call."""

    def __init__(
        self,
        parsed_files: list[_Parsed],
        *,
        uploader,
        indication: str,
        priority,
        result,
        known_series: dict[str, Series] | None = None,
    ):
        self.uploader, self.indication, self.priority, self.result = uploader, indication, priority, result
        self.touched: dict[int, tuple[Study, bool]] = {}
        self.new_instances: list[Instance] = []
        self.new_bytes: dict[str, bytes] = {}  # by SOP Instance UID, until they are committed
        uids = [parsed.sop_instance_uid for parsed in parsed_files]
        # Most instances are new: a bare look-up first (a fraction of the time to build the query
        # with its series, study and patient), the rows of those stored already only when any are.
        stored = list(
            Instance.objects.filter(sop_instance_uid__in=uids).values_list("sop_instance_uid", flat=True)
        )
        self.instances = (
            {
                i.sop_instance_uid: i
                for i in Instance.objects.filter(sop_instance_uid__in=stored).select_related(
                    "series__study__patient"
                )
            }
            if stored
            else {}
        )
        # The caller's series (with their studies and patients), looked up or created by its earlier
        # calls, are not looked up again; those this call finds or creates are added to it.
        self.series = known_series if known_series is not None else {}
        series_uids = {parsed.series["series_uid"] for parsed in parsed_files} - self.series.keys()
        if series_uids:
            found = Series.objects.filter(series_uid__in=series_uids).select_related("study__patient")
            self.series.update((s.series_uid, s) for s in found)
        self.studies = {s.study_uid: s for s in self.series.values() for s in [s.study]}
        missing = {parsed.study["study_uid"] for parsed in parsed_files} - self.studies.keys()
        if missing:
            found = Study.objects.filter(study_uid__in=missing).select_related("patient")
            self.studies.update((s.study_uid, s) for s in found)
        self.patients: dict[str, Patient] = {}

    def write(self, parsed: _Parsed) -> None:
        """One file's rows (none when it is refused: every check comes before the first write)."""
        uid = parsed.sop_instance_uid
        known = self.instances.get(uid)
        if known is not None:
            return self._again(parsed, known)
        series = self.series.get(parsed.series["series_uid"])
        if series is not None and series.study.study_uid != parsed.study["study_uid"]:
            raise IngestError("its Series Instance UID already belongs to another study (conflicting UIDs)")
        sha256 = blob_put(parsed.stored_bytes)
        study, created, first_image = self._study(parsed)
        if series is None:
            series = Series.objects.create(
                **{k: v for k, v in parsed.series.items() if k != "series_uid"},
                series_uid=parsed.series["series_uid"],
                study=study,
            )
            self.series[series.series_uid] = series
        instance = Instance(
            series=series,
            content_type=parsed.content_type,
            sha256=sha256,
            size_bytes=len(parsed.stored_bytes),
            original_name=parsed.name[:255],
            **parsed.instance,
        )
        self.new_instances.append(instance)
        self.new_bytes[uid] = parsed.stored_bytes
        self.instances[uid] = instance
        self.result.stored += 1
        if study.pk not in self.touched:
            self.touched[study.pk] = (study, created)
        if parsed.instance["is_image"] and (created or first_image):
            self.result.first_images.add(study.pk)

    def finish(self) -> None:
        Instance.objects.bulk_create(self.new_instances)

    def _again(self, parsed: _Parsed, known: Instance) -> None:
        """A SOP Instance UID stored already: the same instance is a duplicate (idempotent), other
        content under that UID is refused; the stored instance stays as it is."""
        if known.sha256 != hashlib.sha256(parsed.stored_bytes).hexdigest():
            stored = self.new_bytes.get(known.sop_instance_uid) or _blob_or_nothing(known.sha256)
            if not _same_content(stored, parsed.stored_bytes):
                raise IngestConflict(
                    f"conflict: SOP Instance UID {parsed.sop_instance_uid} is stored already with "
                    "other content; the stored instance was kept"
                )
        self.result.duplicates += 1
        self.result.duplicate_names.append(parsed.name)
        study = known.series.study
        self.touched.setdefault(study.pk, (study, False))

    def _study(self, parsed: _Parsed) -> tuple[Study, bool, bool]:
        """The instance's study, whether this call created it, and whether this is its first image."""
        study = self.studies.get(parsed.study["study_uid"])
        if study is not None:
            if parsed.instance["is_image"] and study.modality.upper() in NON_IMAGE_MODALITIES:
                # Its first image: the study is what that image shows, not a dose report's "SR".
                study.modality, study.body_part = parsed.study["modality"], parsed.study["body_part"]
                study.save(update_fields=["modality", "body_part"])
                return study, False, True
            return study, False, False
        fields = {k: v for k, v in parsed.study.items() if k != "study_uid"}
        if self.indication:
            fields["indication"] = self.indication
        if self.priority is not None:  # the uploader's choice wins over the header's
            fields["priority"] = self.priority
        study, created = Study.objects.get_or_create(
            study_uid=parsed.study["study_uid"],
            defaults={**fields, "patient": self._patient(parsed), "uploaded_by": self.uploader},
        )
        self.studies[study.study_uid] = study
        return study, created, created

    def _patient(self, parsed: _Parsed) -> Patient:
        patient_id = parsed.patient["patient_id"]
        patient = self.patients.get(patient_id)
        if patient is None:
            patient, created = Patient.objects.get_or_create(
                patient_id=patient_id, defaults={k: v for k, v in parsed.patient.items() if k != "patient_id"}
            )
            if parsed.picture and not created and not _same_name(patient.name, parsed.patient["name"]):
                raise IngestError(
                    f"MRN {patient_id} belongs to {patient.name or 'a patient without a name'}, not "
                    f"{parsed.patient['name']}: check the MRN and the name"
                )
            self.patients[patient_id] = patient
        return patient


def _same_name(stored: str, given: str) -> bool:
    """Names as people type them: case, spaces, commas and carets aside."""

    def words(name: str) -> list[str]:
        return sorted(re.split(r"[\s,^]+", name.strip().lower()))

    return not given.strip() or words(stored) == words(given)


def study_ingest(
    *,
    files: list[IncomingFile],
    uploader,
    indication: str = "",
    image_modality: str = "DX",
    picture: PictureDetails | None = None,
    priority: Priority | None = None,
    request=None,
    source: str = "upload",
    known_series: dict[str, Series] | None = None,
    audit_receipt: bool = True,
) -> tuple[IngestResult, list[Study]]:
    """Take in files; return the result and the studies created by this call.

    Each file is validated on its own: a refused file leaves no row and no blob
    and does not affect the others. The rows of accepted files are written in
    one transaction. ``priority``, when given, sets a new study's priority; else
    the DICOM header's Requested Procedure Priority does, else routine. PNG and JPEG
    files take what ``picture`` says (else ``image_modality``) and are one study together.

    ``known_series``: series by UID that a caller taking in one study instance by instance (the
    DIMSE SCP, per association) keeps between calls; valid only while its calls commit (drop it
    when one fails). ``audit_receipt=False``: the caller audits the receipt of the stored
    instances itself (refusals are audited here all the same).
    """
    result = IngestResult()
    if not files:
        raise IngestError("no files were uploaded")
    if len(files) > settings.MAX_UPLOAD_FILES:
        raise IngestError(f"{len(files)} files were sent; the limit is {settings.MAX_UPLOAD_FILES}")
    parsed_files: list[_Parsed] = []
    deidentify = source in settings.MEDPORTAL_DEIDENTIFY_ON_INGEST_SOURCES
    picture = picture or PictureDetails(modality=image_modality)
    picture_uids = _PictureUids.new(picture)

    def refuse(name: str, exc: IngestError) -> None:
        conflict = isinstance(exc, IngestConflict)
        result.rejected.append(Rejection(name, str(exc), conflict=conflict))
        audit_record(
            event_type=EventType.IMPORT,
            action=Action.CREATE,
            outcome=Outcome.MINOR_FAILURE,
            description="Conflicting instance refused" if conflict else "File refused",
            request=request,
            user=uploader,
            object_type="file",
            detail={"name": name[:255], "reason": str(exc), "source": source},
        )

    for incoming in files:
        try:
            parsed = parse_file(incoming, picture=picture, picture_uids=picture_uids)
            if deidentify and parsed.content_type == Instance.DICOM:
                parsed = _deidentified(parsed)
            parsed_files.append(parsed)
        except IngestError as exc:
            refuse(incoming.name, exc)
    # Inside a caller's transaction (the DIMSE committer's) no savepoint: a failure fails it all.
    with transaction.atomic(savepoint=False):
        writer = _Writer(
            parsed_files,
            uploader=uploader,
            indication=indication.strip(),
            priority=priority,
            result=result,
            known_series=known_series,
        )
        for parsed in parsed_files:
            try:
                writer.write(parsed)
            except IngestError as exc:  # raised before any row of this file is written
                refuse(parsed.name, exc)
        writer.finish()
    result.studies = [study for study, _ in writer.touched.values()]
    for study in result.studies if audit_receipt else []:
        study_audit(
            study,
            "Instances received",
            event_type=EventType.IMPORT,
            action=Action.CREATE,
            request=request,
            user=uploader,
            detail={"source": source, "stored": result.stored, "duplicates": result.duplicates},
        )
    created = [study for study, was_created in writer.touched.values() if was_created]
    return result, created


def study_has_images(study: Study) -> bool:
    """Whether a study has anything to draft from or show in the viewer."""
    return Instance.objects.filter(series__study=study, is_image=True).exists()
