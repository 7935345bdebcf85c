"""The few header values a volume is ordered by, read straight from a slice's bytes.

Ordering a 300-slice series needs 300 headers, and pydicom spends about as long parsing a
header as reading an uncompressed slice. Here the file's first bytes are walked up to Pixel Data
by ingest's structural walker (``dicom_scan.dicom_header``; more is read when they end first),
and only the wanted top-level values are converted, as pydicom converts them. Only
the plain case is handled: a Part-10 file in implicit or explicit VR little endian (or with
compressed pixels, whose data set is explicit VR little endian; the pixels are then pydicom's),
without functional groups (a multi-frame enhanced instance), every wanted value well formed. Anything
else gives None, and the caller reads the header with pydicom as before, so that an odd file is
read exactly as it always was.

The scan also says where the pixels lie when they are native single-frame greyscale, so that a
sampled slice is decoded with one read and ``numpy.frombuffer`` (the values pydicom's
``pixel_array`` gives, unused high bits corrected as it corrects them).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from pydicom.uid import UID, AllTransferSyntaxes

from medportal.imaging.dicom_scan import (
    PIXEL_DATA,
    DicomPrefixShort,
    DicomStructureError,
    dicom_header,
    wanted_tags,
)

IMPLICIT_LITTLE = "1.2.840.10008.1.2"
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
# Compressed pixels: the data set is explicit VR little endian, the pixels are left to pydicom.
ENCAPSULATED = frozenset(uid for uid in AllTransferSyntaxes if UID(uid).is_encapsulated)
FIRST_READ = 16384  # bytes; a header rarely needs more, and then the read is doubled

# Top-level elements read, with the VR they must have.
WANTED = wanted_tags(
    "ImageType", "SliceThickness", "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient",
    "SamplesPerPixel", "PhotometricInterpretation", "NumberOfFrames", "Rows", "Columns",
    "BitsAllocated", "BitsStored", "PixelRepresentation", "RescaleIntercept", "RescaleSlope",
)  # fmt: skip
# Enhanced (multi-frame) instances keep position and orientation in these: left to pydicom.
FUNCTIONAL_GROUPS = wanted_tags("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")
_WALKED = WANTED | FUNCTIONAL_GROUPS
# A number as DICOM writes it (DS/IS); anything else is left to pydicom.
_DECIMAL = r" *[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)? *"
_DECIMALS = re.compile(rf"{_DECIMAL}(?:\\{_DECIMAL})*\Z")
_INTEGER = re.compile(r" *[+-]?\d+ *\Z")
_u16 = struct.Struct("<H").unpack_from


class _Unplain(Exception):
    """The header is not the plain case: pydicom reads it."""


@dataclass(frozen=True)
class NativePixels:
    """Where a native single-frame greyscale slice's values lie in its file, and their type."""

    offset: int
    rows: int
    columns: int
    dtype: str  # numpy's, little endian
    shift: int  # Bits Allocated - Bits Stored: unused high bits, corrected as pydicom does
    slope: float
    intercept: float

    @property
    def nbytes(self) -> int:
        return self.rows * self.columns * np.dtype(self.dtype).itemsize

    def array(self, data: bytes) -> np.ndarray:
        """The stored values, from the whole file's ``data`` (not copied where no bits need
        correcting: read-only then)."""
        values = np.frombuffer(data, dtype=self.dtype, count=self.rows * self.columns, offset=self.offset)
        values = values.reshape(self.rows, self.columns)
        if self.shift:
            values = values.copy()
            np.left_shift(values, self.shift, out=values)
            np.right_shift(values, self.shift, out=values)
        return values


@dataclass(frozen=True)
class ScannedHeader:
    """The values ``volume.slice_headers`` reads, converted as pydicom converts them."""

    image_type: list[str]
    instance_number: int | None
    rows: int
    columns: int
    position: tuple[float, ...] | None  # all the values of the element (None when empty)
    orientation: tuple[float, ...] | None
    thickness: float | None
    pixels: NativePixels | None


def header_scan(handle: BinaryIO) -> ScannedHeader | None:
    """The header of the file open in ``handle``, or None where it is not the plain case."""
    size = FIRST_READ
    data = handle.read(size)
    while True:
        try:
            return _scan(data)
        except _Unplain:
            return None
        except DicomPrefixShort:
            if len(data) < size:  # the whole file is read: it is cut short
                return None
            more = handle.read(size)
            size *= 2
            data += more
        except DicomStructureError:
            return None


def _scan(data: bytes) -> ScannedHeader:
    if len(data) < 132:
        raise DicomPrefixShort("the bytes read end before the DICM marker")
    if data[128:132] != b"DICM":
        raise _Unplain
    scanned = dicom_header(data, _WALKED)
    syntax = scanned.transfer_syntax
    if syntax == IMPLICIT_LITTLE:
        pass
    elif syntax == EXPLICIT_LITTLE or syntax in ENCAPSULATED:
        if scanned.implicit:  # pydicom then guesses implicit VR: leave it to it
            raise _Unplain
    else:
        raise _Unplain
    values: dict[int, bytes] = {}
    for tag, (vr, raw) in scanned.values.items():
        if vr != WANTED.get(tag):  # a wrong VR, or functional groups
            raise _Unplain
        values[tag] = raw
    pixel_offset = pixel_length = None
    pixels = scanned.pixels
    if (
        pixels is not None
        and pixels.tag == PIXEL_DATA
        and pixels.vr in ("OB", "OW")
        and not pixels.encapsulated
    ):
        pixel_offset, pixel_length = pixels.offset, pixels.length
    return _header(values, pixel_offset, pixel_length)


def _strings(text: str) -> list[str]:
    """A string value's values, split as pydicom splits them (trailing padding removed)."""
    return text.rstrip(" \x00").split("\\")


def _numbers(raw: bytes | None) -> tuple[float, ...] | None:
    """A DS value's numbers (pydicom strips the whole value first); None when it is empty."""
    text = raw.decode("latin-1").strip().rstrip(" \x00") if raw else ""
    if not text:
        return None
    if not _DECIMALS.match(text):
        raise _Unplain
    return tuple(float(part) for part in text.split("\\"))


def _number(raw: bytes | None) -> float | None:
    numbers = _numbers(raw)
    if numbers is not None and len(numbers) != 1:
        raise _Unplain
    return None if numbers is None else numbers[0]


def _integer(raw: bytes | None) -> int | None:
    """An IS value of one number; None when it is empty."""
    parts = _strings(raw.decode("latin-1")) if raw else [""]
    if parts == [""]:
        return None
    if len(parts) != 1 or not _INTEGER.match(parts[0]):
        raise _Unplain
    return int(parts[0])


def _unsigned(raw: bytes | None) -> int | None:
    if not raw:
        return None
    if len(raw) != 2:
        raise _Unplain
    return _u16(raw)[0]


def _header(values: dict[int, bytes], pixel_offset: int | None, pixel_length: int | None) -> ScannedHeader:
    image_type = values.get(0x00080008)
    thickness = _number(values.get(0x00180050))
    rows, columns = _unsigned(values.get(0x00280010)) or 0, _unsigned(values.get(0x00280011)) or 0
    return ScannedHeader(
        image_type=_strings(image_type.decode("latin-1")) if image_type else [],
        instance_number=_integer(values.get(0x00200013)),
        rows=rows,
        columns=columns,
        position=_numbers(values.get(0x00200032)),
        orientation=_numbers(values.get(0x00200037)),
        thickness=None if thickness is None else round(thickness, 3),
        pixels=_native_pixels(values, rows, columns, pixel_offset, pixel_length),
    )


def _native_pixels(
    values: dict[int, bytes], rows: int, columns: int, offset: int | None, length: int | None
) -> NativePixels | None:
    """Where the pixels lie, when pydicom would give them as they are stored; else None (the
    slice is then decoded by pydicom)."""
    try:
        samples = _unsigned(values.get(0x00280002))
        allocated = _unsigned(values.get(0x00280100))
        stored = _unsigned(values.get(0x00280101))
        signed = _unsigned(values.get(0x00280103))
        frames = _integer(values.get(0x00280008))
        slope = _number(values.get(0x00281053))
        intercept = _number(values.get(0x00281052))
    except _Unplain:
        return None
    photometric = _strings(values.get(0x00280004, b"").decode("latin-1"))
    if (
        offset is None
        or samples != 1
        or photometric not in (["MONOCHROME1"], ["MONOCHROME2"])
        or allocated not in (8, 16)
        or stored is None
        or not 1 <= stored <= allocated
        or signed not in (0, 1)
        or frames not in (None, 1)
        or rows < 1
        or columns < 1
    ):
        return None
    dtype = f"<{'i' if signed else 'u'}{allocated // 8}"
    pixels = NativePixels(
        offset=offset,
        rows=rows,
        columns=columns,
        dtype=dtype,
        shift=allocated - stored,
        slope=1.0 if slope is None else slope,
        intercept=0.0 if intercept is None else intercept,
    )
    # pydicom pads an odd length by one byte; any other difference is left to it.
    return pixels if length in (pixels.nbytes, pixels.nbytes + 1) else None
