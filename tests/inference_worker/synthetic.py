"""Synthetic CT and MR studies written as real DICOM Part-10 files for the volume tests.

Each slice is one constant value, so an image the model receives tells which slice it was:
slice ``k`` of a CT series (``k`` counted from the feet, along the slice normal) holds
``-1000 + 10 * k`` HU.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2.1"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def abdomen_hu(k: int, size: int = 512) -> np.ndarray:
    """Slice ``k`` of a synthetic abdomen in Hounsfield units: an oval body (40…76 HU) in air
    and a 120 HU lesion that moves slice by slice, so that windows and slices differ."""
    yy, xx = np.mgrid[:size, :size]
    body = ((yy - size / 2) ** 2 / 0.8 + (xx - size / 2) ** 2) < (size * 0.42) ** 2
    hu = np.where(body, 40 + (xx % 37), -1000).astype(np.int32)
    hu[(yy - 200) ** 2 + (xx - 260 - k % 20) ** 2 < 400] = 120
    return hu


def slice_hu(k: int) -> int:
    """The Hounsfield value of slice ``k`` (0 = the lowest along the normal)."""
    return -1000 + 10 * k


def _file(ds: Dataset, sop_class: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _common(study: dict, series_uid: str, modality: str, number: int, description: str) -> Dataset:
    ds = Dataset()
    ds.PatientID = study.get("patient_id", "VOL-1")
    ds.PatientName = "Volume^Test"
    ds.StudyInstanceUID = study["study_uid"]
    ds.StudyDate = study.get("date", "20260401")
    ds.StudyDescription = study.get("description", "")
    ds.AccessionNumber = study.get("accession", "")
    if study.get("body_part"):
        ds.BodyPartExamined = study["body_part"]
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = number
    ds.SeriesDescription = description
    ds.SOPInstanceUID = generate_uid()
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    return ds


def ct_series(
    study: dict,
    *,
    slices: int,
    number: int = 2,
    description: str = "AXIAL 1.25",
    orientation: Sequence[float] = AXIAL,
    spacing: float = 1.25,
    size: int = 16,
    instance_numbers: Sequence[int] | None = None,
    localizer: bool = False,
    modality: str = "CT",
) -> list[tuple[str, bytes]]:
    """One single-frame series: slice ``k`` sits at ``k * spacing`` mm along the normal of
    ``orientation`` and holds ``slice_hu(k)`` (CT, stored as HU + 1024) or ``10 * (k + 1)`` (MR).
    ``instance_numbers[k]`` numbers slice ``k`` (default: 1, 2, ...)."""
    series_uid = generate_uid()
    row, col = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row, col)
    files = []
    for k in range(slices):
        ds = _common(study, series_uid, modality, number, description)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER" if localizer else "AXIAL"]
        ds.InstanceNumber = instance_numbers[k] if instance_numbers else k + 1
        ds.ImageOrientationPatient = [f"{v:g}" for v in orientation]
        ds.ImagePositionPatient = [f"{v:g}" for v in (normal * k * spacing)]
        ds.SliceThickness = f"{spacing:g}"
        ds.PixelSpacing = ["0.7", "0.7"]
        ds.Rows = ds.Columns = size
        if modality == "CT":
            ds.PixelRepresentation = 0
            ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
            stored = np.full((size, size), slice_hu(k) + 1024, dtype=np.uint16)
        else:
            ds.PixelRepresentation = 0
            stored = np.full((size, size), 10 * (k + 1), dtype=np.uint16)
        ds.PixelData = stored.tobytes()
        files.append((f"{series_uid[-6:]}-{k}.dcm", _file(ds, CT_IMAGE if modality == "CT" else MR_IMAGE)))
    return files


def enhanced_ct(
    study: dict, *, frames: int, number: int = 5, spacing: float = 2.0, size: int = 16
) -> tuple[str, bytes]:
    """One multi-frame Enhanced CT instance: frame ``f`` (stored in reverse order along the
    normal, so that frame order is not slice order) is slice ``frames - 1 - f``."""
    ds = _common(study, generate_uid(), "CT", number, "ENHANCED AXIAL")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = frames
    ds.Rows = ds.Columns = size
    ds.PixelRepresentation = 0
    shared = Dataset()
    orientation = Dataset()
    orientation.ImageOrientationPatient = [f"{v:g}" for v in AXIAL]
    measures = Dataset()
    measures.SliceThickness = f"{spacing:g}"
    measures.PixelSpacing = ["0.7", "0.7"]
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = 1, -1024, "HU"
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PixelValueTransformationSequence = DicomSequence([transform])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame, pixels = [], []
    for f in range(frames):
        k = frames - 1 - f
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = ["0", "0", f"{k * spacing:g}"]
        item.PlanePositionSequence = DicomSequence([position])
        per_frame.append(item)
        pixels.append(np.full((size, size), slice_hu(k) + 1024, dtype=np.uint16))
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.PixelData = np.stack(pixels).tobytes()
    return ("enhanced.dcm", _file(ds, ENHANCED_CT_IMAGE))


def radiograph(
    study: dict,
    *,
    value: int = 1000,
    modality: str = "CR",
    view: str = "PA",
    size: int = 32,
    columns: int = 32,
) -> tuple[str, bytes]:
    """One frontal radiograph, a gradient; ``columns`` narrower than ``size`` makes one the
    model receives padded black at its sides (so two radiographs are told apart)."""
    ds = _common(study, generate_uid(), modality, 1, "")
    ds.InstanceNumber = 1
    ds.ViewPosition = view
    ds.Rows, ds.Columns = size, columns
    ds.PixelRepresentation = 0
    ds.BitsStored, ds.HighBit = 12, 11
    gradient = np.add.outer(np.arange(size), np.arange(columns)).astype(np.uint16) * 10 + value
    ds.PixelData = gradient.astype(np.uint16).tobytes()
    return (f"cr-{ds.SOPInstanceUID[-6:]}.dcm", _file(ds, "1.2.840.10008.5.1.4.1.1.1"))


def new_study(**fields) -> dict:
    return {"study_uid": generate_uid(), **fields}
