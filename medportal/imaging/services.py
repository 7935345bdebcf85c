"""Changes to studies other than ingest, and reads of pixels for display."""

from __future__ import annotations

import io

import numpy as np
import pydicom
from PIL import Image

from medportal.audit.models import Action, EventType
from medportal.imaging.auditing import study_audit
from medportal.imaging.models import Instance, Study
from medportal.imaging.pixels import display_array, fit_within, png_bytes
from medportal.imaging.storage import blob_read


def study_set_body_part(*, study: Study, body_part: str, user, request=None) -> Study:
    """Say what the study shows when its header does not (the AI draft never guesses it)."""
    previous = study.body_part
    study.body_part = body_part.strip().upper()[:64]
    study.save(update_fields=["body_part"])
    study_audit(
        study,
        "Body part set",
        event_type=EventType.PATIENT_RECORD,
        action=Action.UPDATE,
        request=request,
        user=user,
        detail={"from": previous, "to": study.body_part},
    )
    return study


def study_set_indication(*, study: Study, indication: str, user, request=None) -> Study:
    study.indication = indication.strip()[:4000]
    study.save(update_fields=["indication"])
    study_audit(
        study,
        "Clinical indication edited",
        event_type=EventType.PATIENT_RECORD,
        action=Action.UPDATE,
        request=request,
        user=user,
    )
    return study


def instance_render_png(
    *,
    instance: Instance,
    frame: int = 0,
    center: float | None = None,
    width: float | None = None,
    size: int | None = None,
) -> bytes:
    """The instance as a viewer shows it, as PNG: by default with the header's window, else
    with the given one (greyscale DICOM only); shrunk to fit ``size`` (a thumbnail)."""
    data = blob_read(instance.sha256)
    if instance.content_type != Instance.DICOM:
        with Image.open(io.BytesIO(data)) as image:
            converted = image.convert("RGB" if image.mode not in {"L", "RGB"} else image.mode)
            if size is None:
                out = io.BytesIO()
                converted.save(out, format="PNG")
                return out.getvalue()
            return png_bytes(fit_within(np.asarray(converted), size))
    array = display_array(pydicom.dcmread(io.BytesIO(data)), frame, center=center, width=width)
    return png_bytes(array if size is None else fit_within(array, size))
