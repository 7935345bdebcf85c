"""Pixels for the model, after MedGemma's reference preprocessing.

CXR (CR/DX): modality LUT, window from the header when present, full-range
stretch, MONOCHROME1 inverted. CT: Hounsfield units packed into RGB as three
windows. MR and others: stretched as they are. Then padded square and resized.
"""

from __future__ import annotations

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
# (low, high) Hounsfield windows for R, G, B.
CT_WINDOWS = ((-1024, 1024), (135, 215), (0, 80))


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


def ct_array(ds: pydicom.Dataset) -> np.ndarray:
    hounsfield = apply_modality_lut(frame_of(ds), ds).astype(np.float64)
    channels = [
        np.round((np.clip(hounsfield, low, high) - low) * (255.0 / (high - low))).astype(np.uint8)
        for low, high in CT_WINDOWS
    ]
    return np.stack(channels, axis=-1)


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
