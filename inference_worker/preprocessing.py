"""Pixels for the model, after MedGemma's reference preprocessing.

CXR (CR/DX): modality LUT, window from the header when present, full-range
stretch, MONOCHROME1 inverted. CT: Hounsfield units (modality LUT) packed into RGB as
three windows, each clipped, scaled to 0..255 and rounded, as Google's CT notebook does
(high_dimensional_ct_hugging_face.ipynb: float32, ``(clip - low) / (high - low) * 255``,
``np.round``). MR: no window; min-max over the whole volume the model is given (never per
slice), R=G=B. Others: stretched as they are. Then padded square and resized.
"""

from __future__ import annotations

import functools
import io

import numpy as np
import pydicom
from django.conf import settings
from PIL import Image
from pydicom.pixels import apply_modality_lut

from inference_worker.pixel_source import instance_bytes
from medportal.imaging.models import Instance, Study
from medportal.imaging.pixels import frame_of, stretch_to_uint8

MODEL_IMAGE_SIZE = 896
# (low, high) Hounsfield windows for R (wide), G (soft tissue, W350/L40), B (brain).
CT_WINDOWS = ((-1024, 1024), (-135, 215), (0, 80))


def window_accurate(values: np.ndarray, center: float, width: float) -> np.ndarray:
    low, high = round(center - width / 2), round(center + width / 2)
    return np.clip(values, low, high)


def _first(value) -> float:
    return float(value[0] if isinstance(value, pydicom.multival.MultiValue) else value)


def cxr_array(ds: pydicom.Dataset) -> np.ndarray:
    values = apply_modality_lut(frame_of(ds), ds).astype(np.float64)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        values = window_accurate(values, _first(ds.WindowCenter), _first(ds.WindowWidth))
    image = stretch_to_uint8(values)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        image = 255 - image
    return np.stack([image] * 3, axis=-1)


def ct_rgb(hounsfield: np.ndarray) -> np.ndarray:
    """Hounsfield units as the model's RGB: one window per channel, in the reference's
    arithmetic (float32; round half to even)."""
    channels = []
    for low, high in CT_WINDOWS:
        values = np.clip(hounsfield, low, high).astype(np.float32)
        values -= low
        values /= high - low
        values *= 255.0
        channels.append(np.round(values).astype(np.uint8))
    return np.stack(channels, axis=-1)


def ct_rgb_stored(stored: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """``ct_rgb`` of ``stored * slope + intercept`` for integer stored values, by a lookup
    table over the values present: the same arithmetic on the same numbers, once per distinct
    value instead of once per pixel (a 512×512 slice in about a millisecond)."""
    if stored.dtype.kind not in "iu":
        return ct_rgb(stored.astype(np.float64) * slope + intercept)
    # Unsigned values index the table from 0 (no offset to subtract from every pixel).
    low, high = (0 if stored.dtype.kind == "u" else int(stored.min())), int(stored.max())
    domain = np.arange(low, high + 1, dtype=np.int64)
    # As pydicom's modality LUT computes Hounsfield units: float64, stored * slope + intercept.
    values = domain if (slope, intercept) == (1, 0) else domain.astype(np.float64) * slope + intercept
    table = ct_rgb(values)
    return np.take(table, stored if low == 0 else stored.astype(np.int32) - low, axis=0)


def ct_rgb_image(stored: np.ndarray, slope: float, intercept: float) -> Image.Image:
    """``Image.fromarray(ct_rgb_stored(stored, slope, intercept))``, faster for 8- and 16-bit
    integers: the table covers every value of the stored type and is made once per rescale (a
    volume's slices share it), each entry packed in 4 bytes so that a slice is one ``take``."""
    if stored.dtype.kind not in "iu" or stored.dtype.itemsize > 2 or stored.ndim != 2:
        return Image.fromarray(ct_rgb_stored(stored, slope, intercept))
    table = _ct_packed_table(stored.dtype.itemsize, stored.dtype.kind == "i", float(slope), float(intercept))
    index = stored.view(f"u{stored.dtype.itemsize}") if stored.dtype.kind == "i" else stored
    packed = np.take(table, index)
    return Image.frombytes("RGB", (stored.shape[1], stored.shape[0]), packed, "raw", "RGBX")


@functools.lru_cache(maxsize=16)
def _ct_packed_table(itemsize: int, signed: bool, slope: float, intercept: float) -> np.ndarray:
    """``ct_rgb`` of every stored value, indexed by its bits read unsigned; R, G, B, 0 in each
    entry's 4 bytes."""
    bits = np.arange(2 ** (8 * itemsize), dtype=f"u{itemsize}")
    domain = (bits.view(f"i{itemsize}") if signed else bits).astype(np.int64)
    # As ct_rgb_stored computes them: the same numbers give the same bytes.
    values = domain if (slope, intercept) == (1, 0) else domain.astype(np.float64) * slope + intercept
    packed = np.zeros((len(bits), 4), dtype=np.uint8)
    packed[:, :3] = ct_rgb(values)
    table = packed.view("<u4").reshape(len(bits))
    table.setflags(write=False)
    return table


def model_size(image: Image.Image, size: int = MODEL_IMAGE_SIZE) -> Image.Image:
    """A slice as Google's CT notebook hands it to the processor: at its own size (the
    processor resizes it to the model's), padded square if it is not; only a slice larger than
    the model's size is scaled down here, as the processor would."""
    if image.mode != "RGB":  # (an RGB image is not copied: it is not changed below, only replaced)
        image = image.convert("RGB")
    if image.width != image.height:
        side = max(image.size)
        canvas = Image.new("RGB", (side, side))
        canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        image = canvas
    if image.width > size:
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return image


def ct_array(ds: pydicom.Dataset) -> np.ndarray:
    return ct_rgb(apply_modality_lut(frame_of(ds), ds))


def mr_rgb(slices: list[np.ndarray]) -> list[np.ndarray]:
    """MR slices (modality LUT applied) scaled together: the volume's minimum is 0 and its
    maximum 255 in every slice, R=G=B."""
    low = min(float(s.min()) for s in slices)
    high = max(float(s.max()) for s in slices)
    return [np.stack([stretch_to_uint8(s, low, high)] * 3, axis=-1) for s in slices]


def plain_array(ds: pydicom.Dataset) -> np.ndarray:
    pixels = frame_of(ds)
    image = pixels if pixels.dtype == np.uint8 else stretch_to_uint8(pixels)
    return image if image.ndim == 3 else np.stack([image] * 3, axis=-1)


def square_resize(image: Image.Image, size: int = MODEL_IMAGE_SIZE) -> Image.Image:
    """Pad to a square (black), keeping the aspect ratio, then resize."""
    image = image.convert("RGB")
    side = max(image.size)
    canvas = Image.new("RGB", (side, side))
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas.resize((size, size), Image.Resampling.BICUBIC)


def model_image(instance: Instance, modality: str) -> tuple[Image.Image, dict]:
    """The RGB image the model sees for an instance, and how it was made."""
    data = instance_bytes(instance)
    source = {"pixel_source": settings.MEDPORTAL_PIXEL_SOURCE}
    if instance.content_type != Instance.DICOM:
        with Image.open(io.BytesIO(data)) as image:
            return square_resize(image), {"method": "plain-image", "size": MODEL_IMAGE_SIZE, **source}
    ds = pydicom.dcmread(io.BytesIO(data))
    modality = modality.upper()
    if modality in {"CR", "DX"}:
        array, method = cxr_array(ds), "cxr-window-stretch"
    elif modality == "CT":
        array, method = ct_array(ds), "ct-hu-3-windows"
        source["windows"] = [list(window) for window in CT_WINDOWS]
    elif modality == "MR":
        array, method = mr_rgb([apply_modality_lut(frame_of(ds), ds)])[0], "mr-volume-min-max"
    else:
        array, method = plain_array(ds), "stretch"
    return square_resize(Image.fromarray(array)), {
        "method": method,
        "size": MODEL_IMAGE_SIZE,
        "sop_instance_uid": instance.sop_instance_uid,
        **source,
    }


def representative_instance(study: Study) -> Instance:
    """The image to draft from: a frontal radiograph, else the middle slice of the largest series."""
    instances = list(Instance.objects.filter(series__study=study, is_image=True).select_related("series"))
    if not instances:
        raise ValueError("the study has no images")
    frontal = [i for i in instances if i.view_position.upper() in {"PA", "AP"}]
    if frontal:
        return sorted(frontal, key=lambda i: i.view_position.upper() != "PA")[0]
    by_series: dict[int, list[Instance]] = {}
    for instance in instances:
        by_series.setdefault(instance.series_id, []).append(instance)
    largest = max(by_series.values(), key=len)
    largest.sort(key=lambda i: (i.instance_number is None, i.instance_number or 0, i.pk))
    return largest[len(largest) // 2]
