"""A structural check of a DICOM Part-10 file, and the few header values ingest needs, in one pass.

pydicom reads leniently: a length past the end of the file, an unknown VR or a pixel element
shorter than its image are read without complaint (or fail later, when a page reads the value).
Ingest wants the opposite, so this walks every element of the file once, refuses what is
structurally broken with the reason, and keeps the raw values of the top-level elements ingest
reads (``WANTED``). What it refuses:

- an element, item or fragment whose length runs past the end of what holds it (the file, its
  sequence or its item), an absurd one included (0xFFFFFFF0);
- an undefined length on an element that cannot have one (only sequences, UN and encapsulated
  Pixel Data can);
- a VR that DICOM does not define (explicit VR transfer syntaxes);
- sequences nested deeper than ``MAX_SEQUENCE_DEPTH`` (no real object comes close; a hostile one
  could exhaust the stack of every reader after us);
- a sequence holding something other than items, a file meta without a Transfer Syntax UID, a
  deflated data set that does not inflate.

``dicom_header`` walks the same way the first bytes of a file, up to its pixels, for a reader
that wants a few header values and where the pixels lie without reading the whole file.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VR, tag_for_keyword

MAX_SEQUENCE_DEPTH = 32
UNDEFINED = 0xFFFFFFFF

IMPLICIT_LITTLE = "1.2.840.10008.1.2"
EXPLICIT_BIG = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
NATIVE = {IMPLICIT_LITTLE, "1.2.840.10008.1.2.1", EXPLICIT_BIG, "1.2.840.10008.1.2.1.99"}

VRS = frozenset(
    ["AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV"]
    + ["OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"]
)
_VR_BY_BYTES = {vr.encode(): vr for vr in VRS}
# Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2).
LONG_VRS = frozenset(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"])

ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
PIXEL_GROUP = 0x7FE00000  # a header-only walk stops at the first top-level tag at or after it
ITEM_GROUP = 0xFFFE0000
FLOAT_PIXEL_DATA, DOUBLE_PIXEL_DATA = 0x7FE00008, 0x7FE00009
TRANSFER_SYNTAX = 0x00020010
MEDIA_SOP_CLASS = 0x00020002


def wanted_tags(*keywords: str) -> dict[int, str]:
    """The tags a reader of the walker wants, each with its VR from the DICOM dictionary (what an
    implicit VR file leaves unsaid)."""
    return {int(tag_for_keyword(keyword)): dictionary_VR(keyword) for keyword in keywords}


# Top-level elements whose raw values ingest reads.
WANTED = wanted_tags(
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "StudyDate", "AccessionNumber",
    "Modality", "StudyDescription", "SeriesDescription", "PatientName", "PatientID",
    "PatientBirthDate", "PatientSex", "AdditionalPatientHistory", "BodyPartExamined",
    "ViewPosition", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "InstanceNumber",
    "SamplesPerPixel", "PhotometricInterpretation", "NumberOfFrames", "Rows", "Columns",
    "BitsAllocated", "BitsStored", "HighBit", "ReasonForTheRequestedProcedure",
    "RequestedProcedurePriority",
)  # fmt: skip


_TEXT_VRS = {"PN", "LO", "SH", "LT", "ST", "UT", "UC"}
_DELIMITERS = {"\\", "^", "=", "\r", "\n", "\t", "\f"}


class DicomStructureError(ValueError):
    """The file is structurally broken; the message says where and how."""


class DicomPrefixShort(DicomStructureError):
    """The bytes given to ``dicom_header`` end before its pixels: read more of the file (when
    they are the whole file, it is cut short)."""


@dataclass
class PixelElement:
    tag: int
    vr: str
    length: int  # bytes of a native value; for encapsulated data, the bytes of all its fragments
    encapsulated: bool
    fragments: int = 0  # encapsulated: items after the Basic Offset Table
    offset: int = 0  # where a native value starts in the data set's bytes (inflated, if deflated)


@dataclass
class Scanned:
    transfer_syntax: str
    little_endian: bool
    values: dict[int, tuple[str, bytes]] = field(default_factory=dict)  # tag -> (VR, raw value)
    media_sop_class: str = ""
    pixels: PixelElement | None = None
    elements: int = 0
    implicit: bool = False  # the data set is implicit VR (also where the meta says explicit)

    def text(self, tag: int, limit: int = 64) -> str:
        """A string value as pydicom would give it (in the file's character set), stripped, cut."""
        vr, raw = self.values.get(tag, ("", b""))
        if not raw:
            return ""
        if vr in _TEXT_VRS:
            charsets = self.values.get(0x00080005, ("CS", b""))[1].decode("ascii", "replace")
            names = [c.strip() for c in charsets.split("\\")] if charsets.strip() else ["ISO_IR 6"]
            encodings = convert_encodings(names)
            value = decode_bytes(raw, encodings, _DELIMITERS)
        else:
            value = raw.decode("ascii", "replace")
        return value.strip("\0 ").strip()[:limit]

    def number(self, tag: int) -> int | None:
        """An integer value (US, SS, UL, IS), the first of several; None when absent or not a number."""
        vr, raw = self.values.get(tag, ("", b""))
        if vr in ("US", "SS") and len(raw) >= 2:
            order = "<" if self.little_endian else ">"
            return struct.unpack_from(order + ("H" if vr == "US" else "h"), raw)[0]
        try:
            return int(raw.decode("ascii").split("\\")[0].strip("\0 ") or "x")
        except (UnicodeDecodeError, ValueError):
            return None


def _tag_name(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


class _Walker:
    """Walks a data set, keeping the raw values of the top-level ``wanted`` tags (tag -> VR for
    implicit VR; an element of a wanted tag that is a sequence is kept with an empty value).
    ``header_only``: ``data`` is the first bytes of a file, the walk ends at the first top-level
    tag at or after (7FE0,0000), and running out of bytes raises DicomPrefixShort."""

    def __init__(
        self,
        data: bytes,
        *,
        little: bool,
        implicit: bool,
        scanned: Scanned,
        wanted: dict[int, str],
        header_only: bool = False,
    ):
        self.data = data
        self.implicit = implicit
        self.scanned = scanned
        self.wanted = wanted
        self.header_only = header_only
        # Tags from here are looked at apart: items and delimiters, and in a header-only walk
        # (top level) the end of the header. One comparison per element tells them.
        self.top_apart = PIXEL_GROUP if header_only else ITEM_GROUP
        self.u16 = struct.Struct("<H" if little else ">H").unpack_from
        self.u32 = struct.Struct("<I" if little else ">I").unpack_from
        self.tag_header = struct.Struct("<HHI" if little else ">HHI").unpack_from

    def dataset(self, pos: int, end: int, depth: int, *, in_item: bool) -> int:
        """Elements from ``pos``; stops at ``end`` or, in an item of undefined length, after its
        delimiter. Returns the position after what was read."""
        data, top, wanted = self.data, depth == 0, self.wanted
        apart = self.top_apart if top else ITEM_GROUP
        while pos < end:
            if end - pos < 8:
                raise self._cut(end, f"the data set ends inside an element header at byte {pos}")
            group, element, length = self.tag_header(data, pos)
            tag = group << 16 | element
            if tag >= apart:
                if apart == PIXEL_GROUP:
                    return self._pixels_header(tag, pos, end, length)
                if tag == ITEM_END:
                    if not in_item:
                        raise DicomStructureError(f"an item delimiter outside any item at byte {pos}")
                    return pos + 8
                if group == 0xFFFE:
                    raise DicomStructureError(
                        f"an item tag {_tag_name(tag)} outside a sequence at byte {pos}"
                    )
            if self.implicit:
                vr = ""
                header = 8
            else:
                vr = _VR_BY_BYTES.get(data[pos + 4 : pos + 6])
                if vr is None:
                    unknown = bytes(data[pos + 4 : pos + 6]).decode("latin-1")
                    raise DicomStructureError(f"element {_tag_name(tag)} has an unknown VR {unknown!r}")
                if vr in LONG_VRS:
                    if end - pos < 12:
                        raise self._cut(end, f"the data set ends inside element {_tag_name(tag)}")
                    length = self.u32(data, pos + 8)[0]
                    header = 12
                else:
                    length = self.u16(data, pos + 6)[0]
                    header = 8
            start = pos + header
            self.scanned.elements += 1
            if self.implicit:
                vr = wanted.get(tag) or _implicit_vr(tag, data, start, length, self)
            if length == UNDEFINED:
                if tag == PIXEL_DATA and vr in ("OB", "OW", "UN", "ox"):
                    pos = self._encapsulated(start, end, top)
                elif vr == "SQ" or (vr == "UN" and self.implicit):
                    pos = self._sequence(tag, start, end, depth, undefined=True)
                elif vr == "UN":  # a sequence of unknown VR: implicit VR little endian (PS3.5 6.2.2)
                    unknown = _Walker(
                        data,
                        little=True,
                        implicit=True,
                        scanned=self.scanned,
                        wanted=wanted,
                        header_only=self.header_only,
                    )
                    pos = unknown._sequence(tag, start, end, depth, undefined=True)
                else:
                    raise DicomStructureError(f"element {_tag_name(tag)} ({vr}) has an undefined length")
                if top and tag in wanted:
                    self.scanned.values[tag] = (vr, b"")
                continue
            if length > end - start:
                if tag == PIXEL_DATA and top:
                    raise DicomStructureError(
                        f"the pixel data is cut short ({max(end - start, 0):,} of {length:,} bytes)"
                    )
                raise self._cut(
                    end,
                    f"element {_tag_name(tag)} says it is {length:,} bytes long but only "
                    f"{max(end - start, 0):,} bytes follow",
                )
            if vr == "SQ":
                self._sequence(tag, start, start + length, depth, undefined=False)
                if top and tag in wanted:
                    self.scanned.values[tag] = (vr, b"")
            elif top:
                if tag in wanted:
                    self.scanned.values[tag] = (vr, bytes(data[start : start + length]))
                elif tag in (PIXEL_DATA, FLOAT_PIXEL_DATA, DOUBLE_PIXEL_DATA):
                    vr = "OW" if vr == "ox" else vr
                    self.scanned.pixels = PixelElement(tag, vr, length, encapsulated=False, offset=start)
            pos = start + length
        if in_item:
            raise self._cut(end, "an item of undefined length has no delimiter (the file is cut short)")
        if top and self.header_only:
            raise DicomPrefixShort("the bytes read end before the pixel data")
        return pos

    def _cut(self, end: int, message: str) -> DicomStructureError:
        """The error for bytes running out at ``end``: in a header-only walk, running out at the
        end of the bytes read means that more must be read."""
        if self.header_only and end >= len(self.data):
            return DicomPrefixShort(message)
        return DicomStructureError(message)

    def _pixels_header(self, tag: int, pos: int, end: int, length: int) -> int:
        """Header-only: the walk ends at this top-level element (at or after (7FE0,0000)); where
        it is Pixel Data, where its value lies (not read)."""
        if tag == PIXEL_DATA:
            start, vr = pos + 8, "OW"
            if not self.implicit:
                if end - pos < 12:
                    raise DicomPrefixShort("the bytes read end inside the pixel data's header")
                vr = _VR_BY_BYTES.get(self.data[pos + 4 : pos + 6])
                if vr is None:
                    raise DicomStructureError("the pixel data has an unknown VR")
                if vr in LONG_VRS:
                    length, start = self.u32(self.data, pos + 8)[0], pos + 12
                else:
                    length = self.u16(self.data, pos + 6)[0]
            encapsulated = length == UNDEFINED
            self.scanned.pixels = PixelElement(tag, vr, length, encapsulated, offset=start)
        return pos

    def _sequence(self, tag: int, pos: int, end: int, depth: int, *, undefined: bool) -> int:
        if depth + 1 > MAX_SEQUENCE_DEPTH:
            raise DicomStructureError(f"sequences are nested more than {MAX_SEQUENCE_DEPTH} deep")
        data = self.data
        while pos < end:
            if end - pos < 8:
                raise self._cut(end, f"sequence {_tag_name(tag)} ends inside an item header")
            group, element, length = self.tag_header(data, pos)
            item = group << 16 | element
            if item == SEQUENCE_END:
                if not undefined:
                    raise DicomStructureError(f"sequence {_tag_name(tag)} has a stray delimiter")
                return pos + 8
            if item != ITEM:
                raise DicomStructureError(f"sequence {_tag_name(tag)} holds {_tag_name(item)}, not an item")
            pos += 8
            if length == UNDEFINED:
                pos = self.dataset(pos, end, depth + 1, in_item=True)
            else:
                if length > end - pos:
                    raise self._cut(
                        end,
                        f"an item of sequence {_tag_name(tag)} says it is {length:,} bytes long but only "
                        f"{end - pos:,} bytes follow",
                    )
                self.dataset(pos, pos + length, depth + 1, in_item=False)
                pos += length
        if undefined:
            raise self._cut(end, f"sequence {_tag_name(tag)} has no delimiter (the file is cut short)")
        return pos

    def _encapsulated(self, pos: int, end: int, top: bool) -> int:
        data, fragments, total = self.data, -1, 0  # the first item is the Basic Offset Table
        while True:
            if end - pos < 8:
                raise DicomStructureError("the pixel data is cut short (its fragments have no delimiter)")
            group, element, length = self.tag_header(data, pos)
            item = group << 16 | element
            pos += 8
            if item == SEQUENCE_END:
                break
            if item != ITEM or length == UNDEFINED:
                raise DicomStructureError(f"the pixel data holds {_tag_name(item)}, not a fragment")
            if length > end - pos:
                raise DicomStructureError(
                    f"a pixel data fragment says it is {length:,} bytes long but only "
                    f"{end - pos:,} bytes follow"
                )
            pos += length
            fragments += 1
            total += length
        if top:
            self.scanned.pixels = PixelElement(PIXEL_DATA, "OB", total, True, fragments)
        return pos


def _implicit_vr(tag: int, data, start: int, length: int, walker: _Walker) -> str:
    """An implicit VR element's VR: the dictionary's, else a sequence when its value starts with
    an item (how private sequences are written), else UN."""
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        vr = "UN"
    if tag == PIXEL_DATA:
        return "ox"
    if vr == "UN" and length != UNDEFINED and length >= 8 and start + 8 <= len(data):
        group, element, _ = walker.tag_header(data, start)
        if (group << 16 | element) == ITEM:
            return "SQ"
    return vr.split(" or ")[0] if vr != "US or SS" else "US"


def _meta(data: bytes, scanned: Scanned, *, prefix: bool = False) -> int:
    """File meta elements (group 0002, explicit VR little endian) from byte 132; the data set's
    start. ``prefix``: ``data`` is the first bytes of a file, and running out of them (before the
    data set's first element header) raises DicomPrefixShort."""
    pos, size = 132, len(data)
    u16, u32 = struct.Struct("<H").unpack_from, struct.Struct("<I").unpack_from
    tag_header = struct.Struct("<HH")
    cut = DicomPrefixShort if prefix else DicomStructureError
    while True:
        if pos + 8 > size:
            if prefix:
                raise DicomPrefixShort("the bytes read end inside the file meta")
            break
        group, element = tag_header.unpack_from(data, pos)
        if group != 0x0002:
            break
        vr = data[pos + 4 : pos + 6].decode("latin-1")
        if vr not in VRS:
            tag = _tag_name(group << 16 | element)
            raise DicomStructureError(f"file meta element {tag} has an unknown VR")
        if vr in LONG_VRS:
            if pos + 12 > size:
                raise cut("the file meta is cut short")
            length, header = u32(data, pos + 8)[0], 12
        else:
            length, header = u16(data, pos + 6)[0], 8
        if length == UNDEFINED or pos + header + length > size:
            raise (DicomStructureError if length == UNDEFINED else cut)(
                f"file meta element {_tag_name(group << 16 | element)} runs past the end of the file"
            )
        value = data[pos + header : pos + header + length]
        tag = group << 16 | element
        if tag == TRANSFER_SYNTAX:
            scanned.transfer_syntax = value.decode("ascii", "replace").strip("\0 ")
        elif tag == MEDIA_SOP_CLASS:
            scanned.media_sop_class = value.decode("ascii", "replace").strip("\0 ")
        pos += header + length
    if not scanned.transfer_syntax:
        raise DicomStructureError("the file meta has no Transfer Syntax UID")
    return pos


def dicom_scan(data: bytes, *, max_inflated_bytes: int) -> Scanned:
    """Check a Part-10 file's structure (the caller has seen its DICM marker); its wanted values."""
    scanned = Scanned(transfer_syntax="", little_endian=True)
    start = _meta(data, scanned)
    syntax = scanned.transfer_syntax
    body = data
    end = len(data)
    if syntax == DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            body = inflater.decompress(data[start:], max_inflated_bytes + 1)
        except zlib.error as exc:
            raise DicomStructureError(f"the deflated data set does not inflate ({exc})") from None
        if len(body) > max_inflated_bytes:
            raise DicomStructureError(
                f"the deflated data set inflates to more than {max_inflated_bytes:,} bytes"
            )
        start, end = 0, len(body)
    if start >= end:
        raise DicomStructureError("the file has a file meta but no data set")
    _walk(body, start, end, scanned, WANTED, header_only=False)
    return scanned


def dicom_header(prefix: bytes, wanted: dict[int, str]) -> Scanned:
    """The file meta and the raw values of the top-level ``wanted`` tags (tag -> VR for implicit
    VR) of a Part-10 file's first bytes (the caller has seen its DICM marker), walked and checked
    as ``dicom_scan`` walks a whole file, up to the first top-level tag at or after (7FE0,0000);
    ``pixels`` is then Pixel Data's element, its value's offset in the file, not read.

    Raises DicomPrefixShort where ``prefix`` ends before that tag (read more of the file), and
    DicomStructureError where the file is broken. A deflated data set cannot be walked from its
    first bytes: only the file meta is read (``values`` stays empty)."""
    scanned = Scanned(transfer_syntax="", little_endian=True)
    start = _meta(prefix, scanned, prefix=True)
    if scanned.transfer_syntax != DEFLATED:
        _walk(prefix, start, len(prefix), scanned, wanted, header_only=True)
    return scanned


def _walk(
    body: bytes, start: int, end: int, scanned: Scanned, wanted: dict[int, str], *, header_only: bool
) -> None:
    syntax = scanned.transfer_syntax
    scanned.little_endian = syntax != EXPLICIT_BIG
    implicit = syntax == IMPLICIT_LITTLE
    if not implicit and scanned.little_endian and _VR_BY_BYTES.get(body[start + 4 : start + 6]) is None:
        # A data set written in implicit VR behind a meta that says explicit (some writers do;
        # pydicom and dcmtk read it so): decided once, on its first element, as they do.
        implicit = True
    scanned.implicit = implicit
    walker = _Walker(
        body,
        little=scanned.little_endian,
        implicit=implicit,
        scanned=scanned,
        wanted=wanted,
        header_only=header_only,
    )
    walker.dataset(start, end, 0, in_item=False)
