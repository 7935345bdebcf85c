"""De-identification: DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile.

With three options (``DeidOptions``; all on by default): Retain Longitudinal Temporal
Information with Modified Dates, Retain Patient Characteristics, and Clean Descriptors.
The action for each attribute comes from Table E.1-1 (``deid_table``), in every dataset
and every nested sequence item. What each action does here:

- **X** the attribute is removed.
- **Z** it is kept with a zero-length value (an empty sequence for SQ).
- **D** its value is replaced by a dummy of the same VR: ``ANONYMIZED`` for text and
  names, ``19000101`` / ``000000`` / ``19000101000000`` for DA / TM / DT, ``0`` for
  numbers, two zero bytes for binary VRs, one empty item for a sequence, a replaced UID
  (as U) for UI. Patient ID gets a keyed pseudonym (``ANON`` + 12 hex digits), so the
  studies of one patient stay together without saying who the patient is.
- **U** each UID is replaced by ``2.25.<integer of a UUID>`` where the UUID is built from
  HMAC-SHA256(key, original UID): the same original UID always maps to the same new one
  under one key (so references between the instances of a study stay intact), and the
  mapping cannot be reversed or recomputed without the key. On a sequence (``U*``) the
  sequence is kept and the UIDs inside it are replaced.
- **K** kept (a kept sequence still has its items de-identified).
- **C** for dates and times under Modified Dates: every DA, and the date part of every
  DT, is moved back by a whole number of days, the same for every date of one patient
  (derived from the key and the original Patient ID, 1 to 3650 days, never 0); times of
  day (TM) and the UTC offset therefore stay as they are. A date that cannot be read
  gets the basic action instead.
  **C** for descriptors (Clean Descriptors; the "clean" of Patient Characteristics is
  the same): free text is rebuilt from its words that are in a fixed vocabulary of
  modality, anatomy, orientation, contrast and technique terms (``CLEAN_VOCABULARY``),
  plus numbers of at most three digits with an optional unit (slice thickness, phase);
  every other word (names, identifiers, dates, long numbers, unknown words) is dropped.
  When nothing is left, or for a VR that is not text, the basic action applies. A
  sequence under C keeps its items, de-identified by the same table.

Compound basic actions are resolved to the one that keeps any IOD valid whatever the
attribute's type there: X/Z -> Z, X/D -> D, Z/D -> D, X/Z/D -> D, X/Z/U* -> U*. Where
options apply, K wins over C, and C over the basic action.

Beyond the table: private attributes are removed (``remove_private_tags``, nested too);
overlay planes (60xx) and curves (50xx) are removed whole, as Overlay Data is X; group
lengths are dropped (pydicom recomputes what it needs); the file meta is rebuilt from
scratch (Media Storage SOP Instance UID replaced like the SOP Instance UID, and no
source, sending or receiving AE titles); the 128-byte preamble is zeros. Attributes
the table does not list are kept. The method is recorded: Patient Identity Removed =
YES, De-identification Method, its Code Sequence (CID 7050: 113100, and 113107,
113108, 113105 for the options), and Longitudinal Temporal Information Modified.

An instance flagged Burned In Annotation = YES is refused (``DeidentificationRefused``):
its pixels show text that this profile does not remove.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import io
import re
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any

import pydicom
from django.conf import settings
from django.http import HttpRequest
from pydicom.dataelem import DataElement, empty_value_for_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

from medportal.audit.models import Action, EventType, Outcome
from medportal.audit.services import audit_record
from medportal.imaging.deid_table import CLEAN_VOCABULARY, ProfileRow, row_for
from medportal.imaging.models import Instance, Study
from medportal.imaging.storage import blob_read


class DeidentificationRefused(Exception):
    """An instance cannot be de-identified by this profile; the message says why."""


@dataclass(frozen=True)
class DeidOptions:
    """The Annex E options applied on top of the Basic Profile."""

    retain_modified_dates: bool = True
    retain_patient_characteristics: bool = True
    clean_descriptors: bool = True

    def columns(self) -> list[str]:
        """Table E.1-1 option columns in effect."""
        chosen = [
            ("MD", self.retain_modified_dates),
            ("PC", self.retain_patient_characteristics),
            ("CD", self.clean_descriptors),
        ]
        return [column for column, on in chosen if on]

    def method_codes(self) -> list[tuple[str, str]]:
        """CID 7050 codes (value, meaning) for De-identification Method Code Sequence."""
        codes = [("113100", "Basic Application Confidentiality Profile")]
        if self.retain_modified_dates:
            codes.append(("113107", "Retain Longitudinal Temporal Information Modified Dates Option"))
        if self.retain_patient_characteristics:
            codes.append(("113108", "Retain Patient Characteristics Option"))
        if self.clean_descriptors:
            codes.append(("113105", "Clean Descriptors Option"))
        return codes


def deidentification_key() -> bytes:
    """The key for UIDs, pseudonyms and date offsets: MEDPORTAL_DEIDENTIFY_KEY, else derived
    from SECRET_KEY. Stable, so that re-exports of a patient's studies line up."""
    configured = getattr(settings, "MEDPORTAL_DEIDENTIFY_KEY", "")
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"medportal-deidentify", hashlib.sha256).digest()


_COMPOUND = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "U"}
_TEXT_VRS = {"LO", "SH", "ST", "LT", "UT", "UC", "CS"}
_DUMMY_TEXT = {"DA": "19000101", "TM": "000000", "DT": "19000101000000", "AS": "000D", "UR": "urn:anonymized"}
_NUMBER_VRS = {"IS", "DS", "US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT"}
_BINARY_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
_DT = re.compile(r"(\d{8})([\d.]*)([+-]\d{4})?")
_WORD = re.compile(r"[A-Za-z0-9]+(?:[.,]\d+)?%?")
_SMALL_NUMBER = re.compile(r"\d{1,3}(?:[.,]\d{1,2})?(?:MM|CM|ML|MG|KV|MAS|MS|S|%)?", re.IGNORECASE)
_OVERLAY_OR_CURVE = (0x5000, 0x6000)
_PATIENT_ID = 0x00100020
_METHOD = "DICOM PS3.15 Annex E"


def basic_action(row: ProfileRow, options: DeidOptions) -> str:
    """The one action (D, Z, X, K, C or U) for a row under the options."""
    chosen = [row.options[column] for column in options.columns() if column in row.options]
    if "K" in chosen:
        return "K"
    if "C" in chosen:
        return "C"
    return _COMPOUND.get(row.basic, row.basic)


def _values(elem: DataElement) -> list:
    if elem.value is None:
        return []
    return list(elem.value) if isinstance(elem.value, MultiValue) else [elem.value]


def _clean_text(text: str) -> str:
    words = _WORD.findall(text or "")
    return " ".join(w for w in words if w.upper() in CLEAN_VOCABULARY or _SMALL_NUMBER.fullmatch(w))


class _Deidentifier:
    def __init__(self, *, key: bytes, options: DeidOptions, patient_id: str):
        self.key = key
        self.options = options
        patient = patient_id.encode()
        self.pseudonym = "ANON" + self._mac(b"patient", patient).hex()[:12].upper()
        days = 1 + int.from_bytes(self._mac(b"date-offset", patient)[:4], "big") % 3650
        self.offset = datetime.timedelta(days=days)

    def _mac(self, purpose: bytes, value: bytes) -> bytes:
        return hmac.new(self.key, purpose + b"\0" + value, hashlib.sha256).digest()

    def uid(self, original: str) -> UID:
        raw = bytearray(self._mac(b"uid", original.strip().encode())[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80  # UUID version 8 (RFC 9562: custom)
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        return UID(f"2.25.{uuid.UUID(bytes=bytes(raw)).int}")

    # -- one dataset ----------------------------------------------------------------------

    def dataset(self, ds: Dataset) -> None:
        ds.remove_private_tags()
        for elem in list(ds):
            tag = elem.tag
            if tag.is_private or tag.element == 0 or (tag.group & 0xFF00) in _OVERLAY_OR_CURVE:
                del ds[tag]
                continue
            row = row_for(int(tag))
            if row is None:
                self._descend(elem)  # not listed: kept, but its items may hold listed attributes
                continue
            self._apply(ds, elem, row, basic_action(row, self.options))

    def _descend(self, elem: DataElement) -> None:
        if elem.VR == "SQ":
            for item in elem.value or []:
                self.dataset(item)

    def _apply(self, ds: Dataset, elem: DataElement, row: ProfileRow, action: str) -> None:
        if action == "K":
            self._descend(elem)
        elif action == "X":
            del ds[elem.tag]
        elif action == "Z":
            elem.value = empty_value_for_VR(elem.VR)
        elif action == "D":
            elem.value = self._dummy(elem)
        elif action == "U":
            if elem.VR == "UI":
                self._replace_uids(elem)
            elif elem.VR == "SQ":
                self._descend(elem)
            else:
                elem.value = self._dummy(elem)
        elif action == "C":
            dates = self.options.retain_modified_dates and row.options.get("MD") == "C"
            if not (self._shift(elem) if dates else self._clean(elem)):
                self._apply(ds, elem, row, _COMPOUND.get(row.basic, row.basic))
        else:  # the table is validated on import; this is a programming error
            raise ValueError(f"unknown action {action!r} for {row.tag}")

    def _replace_uids(self, elem: DataElement) -> None:
        new = [self.uid(str(value)) for value in _values(elem) if str(value).strip()]
        elem.value = new if len(new) != 1 else new[0]

    def _dummy(self, elem: DataElement) -> Any:
        vr = elem.VR
        if elem.tag == _PATIENT_ID:
            return self.pseudonym
        if vr == "SQ":
            return Sequence([Dataset()])
        if vr == "UI":
            original = ",".join(str(v) for v in _values(elem)) or f"dummy-{int(elem.tag):08X}"
            return self.uid(original)
        if vr in _DUMMY_TEXT:
            return _DUMMY_TEXT[vr]
        if vr in _NUMBER_VRS:
            return "0" if vr in {"IS", "DS"} else 0
        if vr in _BINARY_VRS:
            return b"\x00\x00"
        return "ANONYMIZED"

    def _shift(self, elem: DataElement) -> bool:
        """Modified Dates: move DA and DT values back; keep TM and the UTC offset. False
        when a value cannot be shifted (the caller then applies the basic action)."""
        if elem.VR == "TM":
            return True
        if elem.VR == "SH":  # Timezone Offset From UTC: kept only when it is one
            return all(re.fullmatch(r"[+-]\d{4}", str(v).strip()) for v in _values(elem))
        if elem.VR not in {"DA", "DT"}:
            return False
        shifted = []
        for value in _values(elem):
            text = str(value).strip()
            if not text:
                shifted.append(text)
                continue
            match = _DT.fullmatch(text) if elem.VR == "DT" else re.fullmatch(r"(\d{8})()()", text)
            if not match:
                return False
            try:
                day = datetime.datetime.strptime(match.group(1), "%Y%m%d").date() - self.offset
            except (ValueError, OverflowError):
                return False
            rest = match.group(2) + (match.group(3) or "")
            shifted.append(f"{day.year:04d}{day.month:02d}{day.day:02d}{rest}")
        elem.value = shifted if len(shifted) != 1 else shifted[0]
        return True

    def _clean(self, elem: DataElement) -> bool:
        if elem.VR == "SQ":
            self._descend(elem)
            return True
        if elem.VR not in _TEXT_VRS:
            return False
        cleaned = [_clean_text(str(value)) for value in _values(elem)]
        cleaned = [value for value in cleaned if value]
        if not cleaned:
            return False
        elem.value = cleaned if len(cleaned) != 1 else cleaned[0]
        return True


def _record_method(ds: Dataset, options: DeidOptions) -> None:
    codes = options.method_codes()
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = [meaning for _, meaning in codes]
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = "MODIFIED" if options.retain_modified_dates else "REMOVED"


def _refuse_burned_in(ds: Dataset) -> None:
    if str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES":
        raise DeidentificationRefused(
            "the instance is flagged Burned In Annotation = YES: its pixels show text "
            "(perhaps names or dates) that de-identification cannot remove"
        )


def instance_deidentify(*, data: bytes, key: bytes, options: DeidOptions) -> bytes:
    """One DICOM Part-10 file, de-identified (see the module docstring), as Part-10 bytes."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except Exception as exc:  # pydicom raises many types for malformed data
        raise DeidentificationRefused(f"unreadable DICOM: {exc}") from None
    _refuse_burned_in(ds)
    transfer_syntax = ds.file_meta.TransferSyntaxUID
    sop_class = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
    worker = _Deidentifier(key=key, options=options, patient_id=str(ds.get("PatientID", "") or ""))
    worker.dataset(ds)
    _record_method(ds, options)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID if "SOPInstanceUID" in ds else worker.uid("sop")
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    ds.preamble = bytes(128)  # never carry over a preamble (PE/ELF polyglots)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def study_deidentified_zip(
    *, study: Study, user: Any, options: DeidOptions, request: HttpRequest | None = None
) -> bytes:
    """A zip of the study's DICOM instances, each de-identified under one key, audited as an export.

    Plain PNG/JPEG images are left out (no header to clean; their pixels cannot be
    checked for burned-in text). Refused whole, and audited as a failure, when an
    instance is flagged Burned In Annotation = YES or when there is no DICOM instance.
    """
    instances = list(
        Instance.objects.filter(series__study=study, content_type=Instance.DICOM)
        .select_related("series")
        .order_by("series__series_number", "series_id", "instance_number", "id")
    )
    key = deidentification_key()
    audit = {
        "event_type": EventType.EXPORT,
        "action": Action.READ,
        "request": request,
        "user": user,
        "patient_id": study.patient.patient_id,
        "study_uid": study.study_uid,
        "accession_number": study.accession_number,
        "object_type": "study",
        "object_id": study.pk,
    }
    detail = {"deidentified": True, "profile": _METHOD, "options": [c for c, _ in options.method_codes()]}
    buffer = io.BytesIO()
    try:
        if not instances:
            raise DeidentificationRefused("the study has no DICOM instance to export")
        series_numbers: dict[int, int] = {}
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for count, instance in enumerate(instances, start=1):
                series = series_numbers.setdefault(instance.series_id, len(series_numbers) + 1)
                try:
                    data = instance_deidentify(data=blob_read(instance.sha256), key=key, options=options)
                except DeidentificationRefused as exc:
                    raise DeidentificationRefused(
                        f"Series {instance.series.series_number or series}, image "
                        f"{instance.instance_number or count}: {exc}. The study was not exported."
                    ) from None
                # Names from counters only: nothing from the header or the uploaded file name.
                archive.writestr(f"series-{series:03d}/image-{count:05d}.dcm", data)
    except DeidentificationRefused as exc:
        audit_record(
            **audit,
            outcome=Outcome.MINOR_FAILURE,
            description="De-identified export refused",
            detail={**detail, "reason": str(exc)},
        )
        raise
    audit_record(**audit, description="De-identified export", detail={**detail, "instances": len(instances)})
    return buffer.getvalue()
