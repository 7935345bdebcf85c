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


def decoded_frame(ds: Dataset, frame: int = 0) -> np.ndarray:
    """One frame, decoding only that frame: scrolling a 300-frame instance must not decode
    300 frames per image. (``frame_of`` decodes them all, which ingest relies on.)"""
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if not 0 <= frame < frames:
        raise ValueError(f"frame {frame} is out of range (the instance has {frames})")
    if frames == 1:
        return ds.pixel_array
    ds.pixel_array_options(index=frame)
    return ds.pixel_array


def has_voi(ds: Dataset) -> bool:
    return "VOILUTSequence" in ds or ("WindowCenter" in ds and "WindowWidth" in ds)


def display_array(
    ds: Dataset, frame: int = 0, *, center: float | None = None, width: float | None = None
) -> np.ndarray:
    """An 8-bit greyscale (H×W) or RGB (H×W×3) array as a viewer shows it.

    By default the header's VOI LUT or window applies; ``center`` and ``width`` (both or
    neither) replace it with a linear window on the modality LUT's output (Hounsfield
    units for CT), as a viewer's window/level does. Colour images have no window."""
    if (center is None) != (width is None):
        raise ValueError("a window needs both a centre and a width")
    if width is not None and width < 1:
        raise ValueError("a window's width is at least 1")
    pixels = decoded_frame(ds, frame)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        # pydicom 3 already returns YBR colour data converted to RGB.
        return stretch_to_uint8(pixels) if pixels.dtype != np.uint8 else pixels
    values = apply_modality_lut(pixels, ds)
    low = high = None
    if center is not None and width is not None:
        image = linear_window(values, center, width)
    else:
        if has_voi(ds):
            values = apply_voi_lut(values, ds, index=0)
            if not ds.get("VOILUTSequence") and None not in (ds.get("WindowCenter"), ds.get("WindowWidth")):
                # The window's output range (not the image's own) is the grey scale: its centre is mid-grey.
                low, high = (float(v) for v in apply_windowing(np.array([-np.inf, np.inf]), ds, index=0))
        image = stretch_to_uint8(values, low, high)
    if photometric == "MONOCHROME1":
        image = 255 - image
    return image


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 "LINEAR" window onto 0..255: below it black, above it white."""
    low = center - 0.5 - (width - 1) / 2
    high = center - 0.5 + (width - 1) / 2
    if high <= low:  # width 1: a threshold at the centre
        return np.where(values > low, 255, 0).astype(np.uint8)
    return stretch_to_uint8(values, low, high)


def fit_within(array: np.ndarray, size: int) -> np.ndarray:
    """Shrunk (never enlarged) to fit a size×size box, keeping the aspect ratio."""
    rows, columns = array.shape[:2]
    scale = size / max(rows, columns)
    if scale >= 1:
        return array
    shape = (max(1, round(columns * scale)), max(1, round(rows * scale)))
    return np.asarray(Image.fromarray(array).resize(shape, Image.Resampling.LANCZOS))


def png_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG", optimize=False)
    return out.getvalue()
