"""Compressed transfer syntaxes: every compressed image pydicom ships goes in, renders and
feeds the model; lossless ones give exactly the pixels of the uncompressed original."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom import uid
from pydicom.uid import generate_uid

from inference_worker.preprocessing import MODEL_IMAGE_SIZE, model_image
from medportal.imaging.ingest import IncomingFile, study_ingest
from medportal.imaging.models import Instance
from medportal.imaging.services import instance_render_png
from medportal.imaging.storage import blob_read
from tests.conftest import dicom_bytes, dicom_path

pytestmark = pytest.mark.usefixtures("image_store")


SAMPLES = dicom_path("CT_small.dcm").parent

# Shipped by pydicom but not valid images: no installed decoder reads them (nor does
# pydicom's own test suite with pylibjpeg), so ingest must refuse them with a reason.
BROKEN = {
    "JPEG-lossy.dcm": "a 12-bit JPEG whose scan header libjpeg rejects (GDCM alone reads it)",
    "JPEG2000-embedded-sequence-delimiter.dcm": "a JPEG 2000 stream cut by a sequence delimiter",
}


def _compressed_images() -> dict[str, pydicom.Dataset]:
    """Part-10 files among pydicom's samples with pixel data in a compressed transfer syntax."""
    found = {}
    for path in sorted(SAMPLES.glob("*.dcm")):
        if path.read_bytes()[128:132] != b"DICM":
            continue
        with warnings.catch_warnings():  # some uncompressed samples are oddly encoded on purpose
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
        syntax = ds.file_meta.get("TransferSyntaxUID")
        if syntax is not None and syntax.is_compressed and "PixelData" in ds:
            found[path.name] = ds
    return found


COMPRESSED = _compressed_images()
VALID = sorted(name for name in COMPRESSED if name not in BROKEN)


def sample_bytes(name: str) -> bytes:
    """The sample as shipped; the few without Study/Series Instance UIDs (which ingest rightly
    refuses) get new ones, their pixel data left as it is."""
    ds = pydicom.dcmread(dicom_path(name))
    if "StudyInstanceUID" in ds and "SeriesInstanceUID" in ds:
        return dicom_bytes(name)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def ingest_one(user, name: str) -> Instance:
    result, _ = study_ingest(files=[IncomingFile(name, sample_bytes(name))], uploader=user)
    assert (result.stored, result.rejected) == (1, [])
    return Instance.objects.select_related("series__study").get()


def rendered(instance: Instance, frame: int = 0) -> np.ndarray:
    with Image.open(io.BytesIO(instance_render_png(instance=instance, frame=frame))) as image:
        return np.asarray(image)


def test_the_samples_cover_every_codec_colour_model_and_multi_frame():
    """So that the parametrised tests below mean what they say."""
    syntaxes = {COMPRESSED[name].file_meta.TransferSyntaxUID for name in VALID}
    assert {
        uid.JPEGBaseline8Bit,
        uid.JPEGExtended12Bit,
        uid.JPEGLosslessSV1,
        uid.JPEGLSLossless,
        uid.JPEGLSNearLossless,
        uid.JPEG2000Lossless,
        uid.JPEG2000,
        uid.RLELossless,
    } <= syntaxes
    photometric = {COMPRESSED[name].PhotometricInterpretation for name in VALID}
    assert {"MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT"} <= photometric
    assert any(int(COMPRESSED[name].get("NumberOfFrames", 1)) > 1 for name in VALID)
    assert set(BROKEN) <= set(COMPRESSED)


@pytest.mark.parametrize("name", VALID)
def test_a_compressed_image_is_ingested_rendered_and_prepared_for_the_model(technologist, name):
    header = COMPRESSED[name]

    instance = ingest_one(technologist, name)

    frames = int(header.get("NumberOfFrames", 1) or 1)
    assert (instance.rows, instance.columns, instance.number_of_frames) == (
        header.Rows,
        header.Columns,
        frames,
    )
    assert instance.photometric_interpretation == header.PhotometricInterpretation
    colour = header.SamplesPerPixel == 3
    for frame in {0, frames - 1}:
        image = rendered(instance, frame)
        assert image.shape == ((header.Rows, header.Columns, 3) if colour else (header.Rows, header.Columns))
        assert image.max() > image.min(), "a blank image"
    picture, how = model_image(instance, instance.series.study.modality)
    assert (picture.mode, picture.size) == ("RGB", (MODEL_IMAGE_SIZE, MODEL_IMAGE_SIZE))
    assert how["sop_instance_uid"] == header.SOPInstanceUID


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_compressed_file_no_decoder_reads_is_refused_with_the_reason(technologist, name):
    result, _ = study_ingest(files=[IncomingFile(name, dicom_bytes(name))], uploader=technologist)

    assert result.stored == 0
    [rejection] = result.rejected
    assert rejection.reason.startswith("DICOM image cannot be decoded: ")
    assert Instance.objects.count() == 0


# (compressed copy, its uncompressed original)
LOSSLESS = [
    ("MR_small_RLE.dcm", "MR_small.dcm"),
    ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
    ("rtdose_rle.dcm", "rtdose.dcm"),  # 15 frames of 32-bit values
    ("rtdose_rle_1frame.dcm", "rtdose_1frame.dcm"),
]


def as_another_instance(name: str) -> bytes:
    """The file with a new SOP Instance UID, so it is stored beside its compressed copy."""
    ds = pydicom.dcmread(dicom_path(name))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize(("name", "original_name"), LOSSLESS)
def test_a_lossless_copy_gives_exactly_the_pixels_of_the_original(technologist, name, original_name):
    original = pydicom.dcmread(dicom_path(original_name))
    assert original.file_meta.TransferSyntaxUID in uid.UncompressedTransferSyntaxes

    result, _ = study_ingest(
        files=[
            IncomingFile(name, dicom_bytes(name)),
            IncomingFile(original_name, as_another_instance(original_name)),
        ],
        uploader=technologist,
    )

    assert (result.stored, result.rejected) == (2, [])
    copy = Instance.objects.select_related("series__study").get(original_name=name)
    stored_original = Instance.objects.select_related("series__study").get(original_name=original_name)
    assert np.array_equal(
        pydicom.dcmread(io.BytesIO(blob_read(copy.sha256))).pixel_array, original.pixel_array
    )
    for frame in range(int(original.get("NumberOfFrames", 1) or 1)):
        assert instance_render_png(instance=copy, frame=frame) == instance_render_png(
            instance=stored_original, frame=frame
        )
    modality = copy.series.study.modality
    ours, theirs = model_image(copy, modality)[0], model_image(stored_original, modality)[0]
    assert ours.tobytes() == theirs.tobytes()


def test_jpeg_lossless_and_rle_copies_of_one_colour_image_are_identical(technologist):
    """SC_rgb_jpeg_gdcm (JPEG lossless, first-order prediction) against SC_rgb_rle (RLE)."""
    reference = pydicom.dcmread(dicom_path("SC_rgb_rle.dcm")).pixel_array

    instance = ingest_one(technologist, "SC_rgb_jpeg_gdcm.dcm")

    assert np.array_equal(rendered(instance), reference)


COLOUR_COPIES = sorted(
    name
    for name in VALID
    if name.startswith("SC_rgb")
    and (COMPRESSED[name].Rows, COMPRESSED[name].Columns, COMPRESSED[name].BitsAllocated) == (100, 100, 8)
    and int(COMPRESSED[name].get("NumberOfFrames", 1) or 1) == 1
)


@pytest.mark.parametrize("name", COLOUR_COPIES)
def test_a_colour_encoding_renders_the_colours_of_the_original(technologist, name):
    """YBR data converted to RGB once (twice, or not at all, shifts every colour far off)."""
    reference = pydicom.dcmread(dicom_path("SC_rgb_rle.dcm")).pixel_array.astype(np.int16)

    instance = ingest_one(technologist, name)

    difference = np.abs(rendered(instance).astype(np.int16) - reference)
    assert difference.mean() < 4
