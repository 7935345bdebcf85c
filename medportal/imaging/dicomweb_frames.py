"""WADO-RS pixel data (PS3.18 10.4.1.1.3-4): an instance's frames as bulk data.

``.../frames/{n[,m...]}`` and ``.../pixeldata`` (every frame) answer
``multipart/related`` with one part per frame. What each part holds follows the client's
``Accept`` (PS3.18 8.7.3.5.2, Table 8.7.3-5):

- ``type="application/octet-stream"`` (no transfer syntax, or Explicit/Implicit VR Little
  Endian): the frame uncompressed, little endian, as many bits per sample as Bits Allocated
  (a compressed frame is decoded here);
- ``type="application/octet-stream"; transfer-syntax=*`` (what OHIF sends), ``*/*``, or no
  type: the frame as stored, its transfer syntax named in the part's Content-Type
  (uncompressed frames are sent little endian);
- an image type (``image/jpeg``, ``image/jls``, ``image/jp2``, ``image/jpx``, ``image/jphc``,
  ``image/dicom-rle``) with a transfer syntax of that type, or ``*``: the compressed frame as
  stored, when it is stored in that transfer syntax (nothing is re-compressed here).

Clauses are tried in the order the client lists them; none possible is a 406 that says why.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medportal.imaging.models import Instance
from medportal.imaging.multipart import media_type
from medportal.imaging.storage import blob_read

OCTET = "application/octet-stream"
ANY_TYPE = "*/*"
ANY_SYNTAX = "*"
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
# Compressed media types: their default transfer syntax and all they may carry (PS3.18 Table 8.7.3-5).
_JPEG = (
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
)
_JLS = ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")
_RLE = ("1.2.840.10008.1.2.5",)
IMAGE_TYPES: dict[str, tuple[str, ...]] = {
    "image/jpeg": _JPEG,
    "image/jls": _JLS,
    "image/x-jls": _JLS,
    "image/jp2": ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"),
    "image/jpx": ("1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"),
    "image/jphc": ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"),
    "image/dicom-rle": _RLE,
    "image/x-dicom-rle": _RLE,
}
_FRAME_LIST = re.compile(r"^[1-9][0-9]{0,8}(,[1-9][0-9]{0,8}){0,999}$")


class FramesNotAcceptable(Exception):
    """No clause of the client's Accept can be honoured; the message says why."""


@dataclass(frozen=True)
class FrameChoice:
    media_type: str  # of each part
    transfer_syntax: str  # named in each part's Content-Type
    as_stored: bool  # the stored (compressed) bytes; else the decoded frame, little endian

    @property
    def part_type(self) -> str:
        return f"{self.media_type}; transfer-syntax={self.transfer_syntax}"


def frame_numbers_parse(text: str) -> list[int]:
    """``1`` or ``1,2,5`` (PS3.18: a comma-separated list of frame numbers, from 1)."""
    if not _FRAME_LIST.match(text):
        raise ValueError(
            f"{text[:40]!r} is not a frame number or a comma-separated list of frame numbers (from 1)"
        )
    return [int(n) for n in text.split(",")]


def frames_accepted(accept: str | None) -> list[tuple[str, str]]:
    """(media type, transfer syntax) of each multipart clause of ``Accept``, in order."""
    if not accept or not accept.strip():
        return [(ANY_TYPE, ANY_SYNTAX)]
    clauses = []
    for clause in accept.split(","):
        kind, params = media_type(clause.strip())
        if kind in {"*/*", "multipart/*"} or (kind == "multipart/related" and "type" not in params):
            clauses.append((ANY_TYPE, ANY_SYNTAX))
        elif kind == "multipart/related":
            part = params["type"].strip().lower()
            clauses.append((part, params.get("transfer-syntax", "").strip()))
    return clauses


def frames_choose(stored: str, accepted: list[tuple[str, str]]) -> FrameChoice:
    """What to send for frames stored in transfer syntax ``stored``."""
    stored_uid = UID(stored)
    compressed = stored_uid.is_encapsulated
    stored_type = next((kind for kind, syntaxes in IMAGE_TYPES.items() if stored in syntaxes), None)
    for kind, syntax in accepted:
        if kind == ANY_TYPE:
            if compressed and stored_type:
                return FrameChoice(stored_type, stored, True)
            if not compressed:
                return FrameChoice(OCTET, ExplicitVRLittleEndian, False)
        elif kind == OCTET:
            if syntax == ANY_SYNTAX:
                return FrameChoice(OCTET, stored if compressed else ExplicitVRLittleEndian, compressed)
            if (syntax or ExplicitVRLittleEndian) in UNCOMPRESSED:
                return FrameChoice(OCTET, syntax or ExplicitVRLittleEndian, False)
        elif kind in IMAGE_TYPES and compressed:
            wanted = stored if syntax == ANY_SYNTAX else (syntax or IMAGE_TYPES[kind][0])
            if wanted == stored and stored in IMAGE_TYPES[kind]:
                return FrameChoice(kind, stored, True)
    raise FramesNotAcceptable(
        f"the frames are stored in transfer syntax {stored}; they can be sent as stored "
        f"(transfer-syntax=*{f' or type={stored_type}' if stored_type else ''}) or uncompressed "
        f'(type="{OCTET}", Explicit VR Little Endian)'
    )


def instance_dataset(instance: Instance) -> Dataset:
    return pydicom.dcmread(io.BytesIO(blob_read(instance.sha256)))


def stored_transfer_syntax(ds: Dataset) -> str:
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    # Deflate compresses the whole data set, not the pixels: once read, they are plain.
    return str(ExplicitVRLittleEndian if syntax.is_deflated else syntax)


def frames_of(ds: Dataset, numbers: list[int], choice: FrameChoice) -> list[bytes]:
    """Frames ``numbers`` (from 1) of ``ds``, as ``choice`` says. Frame numbers are checked by the caller."""
    count = int(ds.get("NumberOfFrames", 1) or 1)
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    if syntax.is_encapsulated:
        offsets = None
        if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
            offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
        if choice.as_stored:
            return [
                get_frame(ds.PixelData, n - 1, number_of_frames=count, extended_offsets=offsets)
                for n in numbers
            ]
        return [_decoded(ds, n - 1) for n in numbers]
    return [_native(ds, n - 1, little_endian=syntax.is_little_endian) for n in numbers]


def _decoded(ds: Dataset, index: int) -> bytes:
    ds.pixel_array_options(index=index)
    array = ds.pixel_array
    bits = int(ds.BitsAllocated)
    dtype = array.dtype.newbyteorder("<") if bits > 8 else array.dtype
    return np.ascontiguousarray(array, dtype=dtype).tobytes()


def _native(ds: Dataset, index: int, *, little_endian: bool) -> bytes:
    rows, columns = int(ds.Rows), int(ds.Columns)
    samples, bits = int(ds.get("SamplesPerPixel", 1)), int(ds.BitsAllocated)
    data = ds.PixelData
    frame_bits = rows * columns * samples * bits
    if frame_bits % 8:
        # Bits Allocated 1 (segmentations, overlays): frames are not byte aligned; each frame is
        # sent on its own, from its first bit, padded to a whole byte.
        unpacked = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
        piece = unpacked[index * frame_bits : (index + 1) * frame_bits]
        return np.packbits(piece, bitorder="little").tobytes()
    size = frame_bits // 8
    frame = bytes(data[index * size : (index + 1) * size])
    if not little_endian and bits > 8:
        frame = np.frombuffer(frame, dtype=f">u{bits // 8}").astype(f"<u{bits // 8}").tobytes()
    return frame
