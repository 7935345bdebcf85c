"""Headers scanned from a slice's bytes read as pydicom reads them, or not at all.

A volume is ordered from a scan of each file's first bytes (``slice_scan``) where the file is
the plain case, and a sampled slice is then decoded without pydicom. These tests hold the scan
to pydicom's reading of the same file, value for value and pixel for pixel, and check that a
file it does not handle is left to pydicom and gives the volume the same images.
"""

from __future__ import annotations

import io
import random

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from inference_worker.preprocessing import ct_rgb_image, ct_rgb_stored
from inference_worker.slice_scan import header_scan
from inference_worker.volume import (
    HEADER_TAGS,
    _rescale_of,
    scanned_slices,
    series_header,
    slice_headers,
    study_volume,
    volume_images,
)
from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Study
from medportal.intake.receive import studies_receive
from tests.inference_worker.synthetic import ct_series, enhanced_ct, new_study


def rewritten(data: bytes, *, syntax: str = ExplicitVRLittleEndian, rle: bool = False, **changes) -> bytes:
    """A synthetic slice saved again in ``syntax``, with ``changes`` (None deletes an element)."""
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.file_meta.TransferSyntaxUID = syntax
    if rle:
        ds.compress(RLELossless)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def with_sequences(data: bytes, *, syntax: str = ExplicitVRLittleEndian) -> bytes:
    """The slice with a sequence of undefined length (an item of undefined length holding
    another such sequence) before the wanted elements, as scanners write them."""
    ds = pydicom.dcmread(io.BytesIO(data))
    inner = Dataset()
    inner.CodeValue, inner.CodingSchemeDesignator = "121311", "DCM"
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4"
    item.PurposeOfReferenceCodeSequence = Sequence([inner])
    ds.ReferencedImageSequence = Sequence([item])
    ds["ReferencedImageSequence"].is_undefined_length = True
    ds.ReferencedImageSequence[0]["PurposeOfReferenceCodeSequence"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def one_slice(size: int = 8) -> bytes:
    return ct_series(new_study(body_part="CHEST"), slices=2, size=size)[1][1]


def junk_high_bits(size: int, signed: bool) -> bytes:
    """12-bit values with the unused high 4 bits set at random (pydicom masks or sign-extends)."""
    values = np.random.default_rng(5).integers(0, 1 << 16, size * size, dtype=np.uint16)
    values[:4] = [0x0800, 0xF7FF, 0x0FFF, 0x1001]  # the 12-bit sign bit on and off
    return values.astype("<u2").tobytes()


PLAIN = {
    "explicit VR": lambda: one_slice(),
    "implicit VR": lambda: rewritten(one_slice(), syntax=ImplicitVRLittleEndian),
    "sequences of undefined length, explicit VR": lambda: with_sequences(one_slice()),
    "sequences of undefined length, implicit VR": lambda: with_sequences(
        one_slice(), syntax=ImplicitVRLittleEndian
    ),
    "12 bits of 16, unsigned, high bits set": lambda: rewritten(
        one_slice(), BitsStored=12, HighBit=11, PixelData=junk_high_bits(8, False)
    ),
    "12 bits of 16, signed, high bits set, rescaled": lambda: rewritten(
        one_slice(),
        BitsStored=12,
        HighBit=11,
        PixelRepresentation=1,
        RescaleSlope="0.5",
        RescaleIntercept="-20.25",
        PixelData=junk_high_bits(8, True),
    ),
    "8 bits, no rescale": lambda: rewritten(
        one_slice(),
        BitsAllocated=8,
        BitsStored=8,
        HighBit=7,
        PixelData=bytes(range(64)),
        RescaleSlope=None,
        RescaleIntercept=None,
    ),
    "padded and spaced values": lambda: rewritten(
        one_slice(),
        ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER "],
        ImagePositionPatient=[" -12.5", "+3", "1.25e1 "],
        InstanceNumber=" 42",
        SliceThickness="2.3456",
    ),
    "no position, empty thickness, MONOCHROME1": lambda: rewritten(
        one_slice(), ImagePositionPatient=None, SliceThickness="", PhotometricInterpretation="MONOCHROME1"
    ),
    "a position of two values": lambda: rewritten(one_slice(), ImagePositionPatient=["1", "2"]),
}


@pytest.mark.parametrize("make", PLAIN.values(), ids=PLAIN.keys())
def test_a_plain_slice_is_scanned_as_pydicom_reads_it(make):
    data = make()
    scanned = header_scan(io.BytesIO(data))
    assert scanned is not None
    header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=HEADER_TAGS)
    assert scanned_slices(None, scanned) == slice_headers(None, header)

    full = pydicom.dcmread(io.BytesIO(data))
    assert scanned.pixels is not None
    ours, theirs = scanned.pixels.array(data), full.pixel_array
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    assert (scanned.pixels.slope, scanned.pixels.intercept) == _rescale_of(full, 0)


def test_the_high_bits_are_corrected_as_pydicom_corrects_them():
    data = PLAIN["12 bits of 16, signed, high bits set, rescaled"]()
    values = header_scan(io.BytesIO(data)).pixels.array(data).ravel()[:4].tolist()
    assert values == [-2048, 2047, -1, 1]  # 0x0800, 0xF7FF, 0x0FFF, 0x1001 as signed 12-bit numbers


NOT_PLAIN = {
    "a multi-frame enhanced CT (functional groups)": lambda: enhanced_ct(new_study(), frames=3)[1],
    "deflated": lambda: rewritten(one_slice(), syntax=DeflatedExplicitVRLittleEndian),
    "an empty value among a position's": lambda: rewritten(one_slice(), ImagePositionPatient=["1", "", "2"]),
    "two instance numbers": lambda: two_instance_numbers(one_slice()),
    "not Part 10": lambda: one_slice()[132:],
    "cut short inside its header": lambda: one_slice()[:300],
}


def two_instance_numbers(data: bytes) -> bytes:
    """Instance Number "1\\2" written by hand (pydicom reads it as two values)."""
    single = b"\x20\x00\x13\x00IS\x02\x002 "
    assert data.count(single) == 1
    return data.replace(single, b"\x20\x00\x13\x00IS\x04\x001\\2 ")


@pytest.mark.parametrize("make", NOT_PLAIN.values(), ids=NOT_PLAIN.keys())
def test_a_slice_that_is_not_the_plain_case_is_left_to_pydicom(make):
    assert header_scan(io.BytesIO(make())) is None


def test_compressed_pixels_are_left_to_pydicom_but_the_header_is_scanned():
    scanned = header_scan(io.BytesIO(rewritten(one_slice(), rle=True)))
    assert scanned is not None and scanned.pixels is None and scanned.position == (0.0, 0.0, 1.25)


def test_a_long_header_is_read_in_more_than_one_read():
    data = rewritten(one_slice(), TextValue="x" * 40000)
    scanned = header_scan(io.BytesIO(data))
    assert scanned is not None and scanned.pixels.offset > 40000


@pytest.mark.parametrize("dtype", ["u1", "i1", "<u2", "<i2", "<i4", "<f4"])
@pytest.mark.parametrize(("slope", "intercept"), [(1.0, 0.0), (1.0, -1024.0), (0.5, -20.25), (2.5, -3000.0)])
def test_the_ct_table_gives_the_reference_windows_byte_for_byte(dtype, slope, intercept):
    info = (
        np.iinfo(np.int16) if dtype in ("<i4", "<f4") else np.iinfo(dtype)
    )  # (the reference's table is of the values present)
    stored = np.random.default_rng(1).integers(info.min, info.max, (24, 40), endpoint=True).astype(dtype)
    made = ct_rgb_image(stored, slope, intercept)
    assert made.mode == "RGB" and made.size == (40, 24)
    assert made.tobytes() == Image.fromarray(ct_rgb_stored(stored, slope, intercept)).tobytes()


def received(user, files: list[tuple[str, bytes]]) -> Study:
    result, _ = studies_receive(
        files=[IncomingFile(name, data) for name, data in files], uploader=user, auto_draft=False
    )
    assert result.rejected == [], result.rejected
    return Study.objects.get()


@pytest.mark.django_db
@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_a_volume_from_scans_is_the_volume_from_pydicom_headers(technologist, modality):
    """A 100-slice series, shuffled numbers, 12-bit signed rescaled pixels, a third of its files
    deflated (not the plain case: their headers and pixels are read by pydicom): the order, the
    sampled slices and every image are those of the pydicom-only reading."""
    numbers = list(range(1, 101))
    random.Random(11).shuffle(numbers)
    files = ct_series(
        new_study(body_part="CHEST"), slices=100, size=16, instance_numbers=numbers, modality=modality
    )
    rng = np.random.default_rng(2)
    changed = []
    for k, (name, data) in enumerate(files):
        pixels = rng.integers(-2048, 2048, 256).astype("<i2")
        pixels[: k + 1] |= np.int16(0x7000)  # junk in the unused bits
        changed.append(
            (
                name,
                rewritten(
                    data,
                    syntax=DeflatedExplicitVRLittleEndian if k % 3 == 0 else ExplicitVRLittleEndian,
                    BitsStored=12,
                    HighBit=11,
                    PixelRepresentation=1,
                    RescaleSlope="1.5",
                    RescaleIntercept="-100",
                    PixelData=pixels.tobytes(),
                ),
            )
        )
    study = received(technologist, changed)

    scanned = study_volume(study, modality)
    read = study_volume(study, modality, header=series_header)

    assert sum(s.pixels is not None for s in scanned.slices) == 66  # the deflated 34 left to pydicom
    assert all(s.pixels is None for s in read.slices)
    assert [s.instance.pk for s in scanned.slices] == [s.instance.pk for s in read.slices]
    assert scanned.slices == read.slices and scanned.sampled == read.sampled and len(scanned.sampled) == 85
    assert (scanned.spacing_mm, scanned.ordered_by) == (read.spacing_mm, read.ordered_by)
    ours, made = volume_images(scanned, modality)
    theirs, made_read = volume_images(read, modality)
    assert made == made_read
    assert [image.tobytes() for image in ours] == [image.tobytes() for image in theirs]


@pytest.mark.parametrize(
    "other",
    [
        (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        (1.0, 0.0, 0.0009, 0.0, 1.0, 0.0),
        (1.0, 0.0, 0.00101, 0.0, 1.0, 0.0),
        (1.0 + 1.01e-3, 0.0, 0.0, 0.0, 1.0, 0.0),  # within atol + rtol * |b|
        (1.0, 0.0, 0.0, 0.0, 0.99, 0.0),
        (float("nan"), 0.0, 0.0, 0.0, 1.0, 0.0),
        (float("inf"), 0.0, 0.0, 0.0, 1.0, 0.0),
    ],
)
def test_orientations_are_the_same_as_numpy_allclose_says(other):
    from inference_worker.volume import _same_orientation

    for a, b in [
        ((1.0, 0.0, 0.0, 0.0, 1.0, 0.0), other),
        (other, other),
        (other, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)),
    ]:
        assert _same_orientation(a, b) == bool(np.allclose(a, b, atol=1e-3))
