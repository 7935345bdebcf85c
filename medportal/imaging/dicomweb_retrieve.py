"""WADO-RS representations of stored instances: the DICOM file, its header, a rendered image.

Instances are kept as received (preamble zeroed). A client that accepts any
transfer syntax gets those bytes; one that asks for Explicit VR Little Endian
(the DICOMweb default) gets a decompressed or re-encoded copy.
"""

from __future__ import annotations

import io

import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from medportal.imaging.models import Instance
from medportal.imaging.multipart import media_type
from medportal.imaging.services import instance_render_png
from medportal.imaging.storage import blob_read, image_storage

ANY = "*"


class NotAcceptable(Exception):
    """No representation the client accepts can be made; the message says why."""


def accepted_transfer_syntaxes(accept: str | None) -> list[str]:
    """Transfer syntaxes a multipart/related application/dicom ``Accept`` header allows, in its order.

    No header, ``*/*`` or ``multipart/related`` without a type let the server choose (``*``);
    ``type="application/dicom"`` without a transfer syntax means Explicit VR Little Endian
    (PS3.18 8.7.3.5.2).
    """
    if not accept or not accept.strip():
        return [ANY]
    syntaxes: list[str] = []
    for clause in accept.split(","):
        kind, params = media_type(clause.strip())
        if kind in {"*/*", "multipart/*"} or (kind == "multipart/related" and "type" not in params):
            syntaxes.append(ANY)
        elif kind == "multipart/related" and params["type"].lower() == "application/dicom":
            syntaxes.append(params.get("transfer-syntax", ExplicitVRLittleEndian).strip() or ANY)
    return syntaxes


def _can_make(requested: str, stored: str) -> bool:
    if requested in (ANY, stored):
        return True
    # Decompressing or re-encoding to Explicit VR Little Endian is all the transcoding done here;
    # pydicom cannot convert big endian data.
    return requested == ExplicitVRLittleEndian and UID(stored).is_little_endian


def instance_header(instance: Instance) -> Dataset:
    """The stored instance's attributes, read up to its Pixel Data (not loaded)."""
    with image_storage().open(instance.storage_name, "rb") as handle:
        return pydicom.dcmread(handle, stop_before_pixels=True)


def transfer_syntax_choose(header: Dataset, syntaxes: list[str]) -> str:
    """The first of ``syntaxes`` this instance can be sent in (``*`` meaning as stored)."""
    stored = str(header.file_meta.TransferSyntaxUID)
    for requested in syntaxes:
        if _can_make(requested, stored):
            return stored if requested == ANY else requested
    raise NotAcceptable(
        f"instance {header.get('SOPInstanceUID', '')} is stored in transfer syntax {stored}; "
        f"it can be sent as stored or as Explicit VR Little Endian ({ExplicitVRLittleEndian})"
    )


def instance_dicom(instance: Instance, syntaxes: list[str]) -> tuple[bytes, str]:
    """The instance as a DICOM Part-10 file in the first acceptable transfer syntax, and that syntax."""
    data = blob_read(instance.sha256)
    if syntaxes and syntaxes[0] == ANY:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        return data, str(ds.file_meta.TransferSyntaxUID)
    ds = pydicom.dcmread(io.BytesIO(data))
    target = transfer_syntax_choose(ds, syntaxes)
    if target == ds.file_meta.TransferSyntaxUID:
        return data, target
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()  # to Explicit VR Little Endian
    else:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), target


RENDERED_TYPES = ("image/png", "image/jpeg")


def rendered_media_type(accept: str | None) -> str:
    """``image/png`` unless the client accepts only JPEG; NotAcceptable when it takes neither."""
    if not accept or not accept.strip():
        return "image/png"
    for clause in accept.split(","):
        kind, _ = media_type(clause.strip())
        if kind in {"*/*", "image/*", "image/png"}:
            return "image/png"
        if kind == "image/jpeg":
            return "image/jpeg"
    raise NotAcceptable(f"rendered images are sent as {' or '.join(RENDERED_TYPES)}")


def instance_rendered(instance: Instance, *, media: str, frame: int = 0, size: int | None = None) -> bytes:
    """The instance as a viewer shows it by default, as PNG or JPEG; shrunk to fit ``size``."""
    png = instance_render_png(instance=instance, frame=frame, size=size)
    if media == "image/png":
        return png
    with Image.open(io.BytesIO(png)) as image:
        out = io.BytesIO()
        image.convert("RGB" if image.mode not in {"L", "RGB"} else image.mode).save(out, format="JPEG")
        return out.getvalue()
