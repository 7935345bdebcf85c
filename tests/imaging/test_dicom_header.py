"""A header walked from a file's first bytes: as the whole file's walk reads it, or "read more".

``dicom_header`` walks a prefix of a Part-10 file up to its pixels with ingest's walker, so that
a reader can take a few header values and where the pixels lie without reading the file. It
must tell a prefix that ends too soon (read more) apart from a broken file.
"""

from __future__ import annotations

import io
import struct

import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian

from medportal.imaging.dicom_scan import (
    WANTED,
    DicomPrefixShort,
    DicomStructureError,
    dicom_header,
    dicom_scan,
)
from medportal.imaging.ingest import IncomingFile, study_ingest
from tests.conftest import dicom_bytes


def implicit(data: bytes) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize(
    "make", [lambda: dicom_bytes("CT_small.dcm"), lambda: implicit(dicom_bytes("CT_small.dcm"))]
)
def test_every_prefix_is_read_more_until_the_pixels_then_the_whole_files_values(make):
    data = make()
    whole = dicom_scan(data, max_inflated_bytes=len(data))
    pixels = pydicom.dcmread(io.BytesIO(data)).PixelData
    start = data.index(pixels)
    for size in range(132, start):
        with pytest.raises(DicomPrefixShort):
            dicom_header(data[:size], WANTED)
    header = dicom_header(data[:start], WANTED)
    assert header.values == whole.values and header.transfer_syntax == whole.transfer_syntax
    assert (header.pixels.offset, header.pixels.length, header.pixels.encapsulated) == (
        start,
        len(pixels),
        False,
    )
    assert data[header.pixels.offset : header.pixels.offset + header.pixels.length] == pixels


def test_a_broken_element_in_the_prefix_is_broken_not_short():
    data = bytearray(dicom_bytes("CT_small.dcm"))
    at = data.index(b"\x08\x00\x30\x10LO", 132)  # StudyDescription
    data[at + 4 : at + 6] = b"ZZ"
    with pytest.raises(DicomStructureError, match=r"\(0008,1030\) has an unknown VR 'ZZ'") as raised:
        dicom_header(bytes(data[: at + 4000]), WANTED)
    assert not isinstance(raised.value, DicomPrefixShort)


@pytest.mark.django_db
def test_an_implicit_private_element_past_the_end_is_refused_with_the_reason(technologist):
    """An implicit VR element of no known VR, longer than what follows it at the end of the file
    (its first bytes are looked at to tell a private sequence): refused, not a crash."""
    data = implicit(dicom_bytes("CT_small.dcm")) + struct.pack("<HHI", 0x0009, 0x1010, 100) + b"ab"
    result, _ = study_ingest(files=[IncomingFile("ct.dcm", data)], uploader=technologist)
    assert result.stored == 0
    assert "element (0009,1010) says it is 100 bytes long but only 2 bytes follow" in str(result.rejected)
