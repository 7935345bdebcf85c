"""Pixels for display: DICOM through the modality LUT and VOI LUT/window to 8 bits."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.pixels.processing import apply_windowing


def stretch_to_uint8(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Linearly map low..high (by default the array's own range) onto 0..255."""
    values = values.astype(np.float64)
    low = float(values.min()) if low is None else low
    high = float(values.max()) if high is None else high
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((np.clip(values, low, high) - low) * (255.0 / (high - low))).astype(np.uint8)


def frame_of(ds: Dataset, frame: int = 0) -> np.ndarray:
    """One frame of stored values (all frames are decoded by pydicom, then one is kept)."""
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if not 0 <= frame < frames:
        raise ValueError(f"frame {frame} is out of range (the instance has {frames})")
    pixels = ds.pixel_array
    return pixels[frame] if frames > 1 else pixels


def has_voi(ds: Dataset) -> bool:
    return "VOILUTSequence" in ds or ("WindowCenter" in ds and "WindowWidth" in ds)


def display_array(ds: Dataset, frame: int = 0) -> np.ndarray:
    """An 8-bit greyscale (H×W) or RGB (H×W×3) array as a viewer shows it by default."""
    pixels = frame_of(ds, frame)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        # pydicom 3 already returns YBR colour data converted to RGB.
        return stretch_to_uint8(pixels) if pixels.dtype != np.uint8 else pixels
    values = apply_modality_lut(pixels, ds)
    low = high = None
    if has_voi(ds):
        values = apply_voi_lut(values, ds, index=0)
        if not ds.get("VOILUTSequence") and None not in (ds.get("WindowCenter"), ds.get("WindowWidth")):
            # The window's output range (not the image's own) is the grey scale: its centre is mid-grey.
            low, high = (float(v) for v in apply_windowing(np.array([-np.inf, np.inf]), ds, index=0))
    image = stretch_to_uint8(values, low, high)
    if photometric == "MONOCHROME1":
        image = 255 - image
    return image


def png_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG", optimize=False)
    return out.getvalue()
