"""WADO-RS metadata (PS3.18 10.4.1.1.2) from headers converted once, with Pixel Data by reference.

A viewer opening a 500-slice series asks for its metadata, and asks again on the next visit.
Reading 500 files' headers and converting them to DICOM JSON for each answer took seconds
(bench figures in the README); the JSON of each instance is made once, from its stored file,
and kept in the database (``InstanceMetadata``). Pixel Data is never inline: it is a
BulkDataURI, the instance's ``/pixeldata`` resource.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medportal.imaging.dicomweb_json import metadata_json
from medportal.imaging.models import Instance, InstanceMetadata
from medportal.imaging.storage import image_storage

# Bumped when the conversion changes: rows of an older version are made again on first read.
METADATA_VERSION = 2
PIXEL_DATA = "7FE00010"
_PIXEL_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010), little endian


def _pixel_value_offset(handle: BinaryIO, header: Dataset) -> int | None:
    """Where Pixel Data's value starts, for uncompressed little-endian data (``handle`` stands at
    the element, where reading the header stopped); None when it is not so laid out."""
    syntax = str(header.file_meta.TransferSyntaxUID)
    if syntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        return None
    start = handle.tell()
    head = handle.read(12)
    if head[:4] != _PIXEL_TAG:
        return None
    if syntax == ImplicitVRLittleEndian:
        length, size = struct.unpack("<I", head[4:8])[0], 8
    elif head[4:6] in (b"OB", b"OW"):
        length, size = struct.unpack("<I", head[8:12])[0], 12
    else:
        return None
    return None if length == 0xFFFFFFFF else start + size


def _convert(instance: Instance) -> InstanceMetadata:
    with image_storage().open(instance.storage_name, "rb") as handle:
        header = pydicom.dcmread(handle, stop_before_pixels=True)
        offset = _pixel_value_offset(handle, header) if instance.rows is not None else None
    pixel_vr, frame_bytes = "", None
    if instance.rows is not None and instance.columns is not None:
        encapsulated = UID(header.file_meta.TransferSyntaxUID).is_encapsulated
        bits = int(header.get("BitsAllocated", 16))
        pixel_vr = "OB" if encapsulated or bits <= 8 else "OW"
        frame_bits = instance.rows * instance.columns * int(header.get("SamplesPerPixel", 1)) * bits
        frame_bytes = frame_bits // 8 if frame_bits % 8 == 0 else None
    text = json.dumps(metadata_json(header), separators=(",", ":"))
    return InstanceMetadata(
        instance=instance,
        sha256=instance.sha256,
        version=METADATA_VERSION,
        dicom_json=text,
        pixel_vr=pixel_vr,
        transfer_syntax=str(header.file_meta.TransferSyntaxUID),
        pixel_offset=offset if frame_bytes else None,
        frame_bytes=frame_bytes if offset is not None else None,
    )


def instances_metadata(instances: list[Instance]) -> list[InstanceMetadata]:
    """The converted header of each instance, in order; made (and kept) where missing or stale.

    ``instances`` should come with ``select_related("dicom_metadata")``: one query for all."""
    rows, fresh = [], []
    for instance in instances:
        row = getattr(instance, "dicom_metadata", None) if _has_metadata(instance) else None
        if row is None or row.sha256 != instance.sha256 or row.version != METADATA_VERSION:
            row = _convert(instance)
            fresh.append(row)
        rows.append(row)
    if fresh:
        InstanceMetadata.objects.bulk_create(
            fresh,
            update_conflicts=True,
            unique_fields=["instance"],
            update_fields=[
                "sha256",
                "version",
                "dicom_json",
                "pixel_vr",
                "transfer_syntax",
                "pixel_offset",
                "frame_bytes",
            ],
        )
    return rows


def instance_metadata(instance: Instance) -> InstanceMetadata:
    """One instance's converted header (made and kept when missing or stale)."""
    return instances_metadata([instance])[0]


def frames_read(row: InstanceMetadata, numbers: list[int]) -> list[bytes]:
    """Uncompressed frames straight from the stored file: a seek and a read each, nothing parsed."""
    assert row.pixel_offset is not None and row.frame_bytes
    with image_storage().open(row.instance.storage_name, "rb") as handle:
        frames = []
        for number in numbers:
            handle.seek(row.pixel_offset + (number - 1) * row.frame_bytes)
            frames.append(handle.read(row.frame_bytes))
    return frames


def _has_metadata(instance: Instance) -> bool:
    try:
        instance.dicom_metadata  # noqa: B018  (a reverse one-to-one raises when there is none)
    except InstanceMetadata.DoesNotExist:
        return False
    return True


def metadata_body(rows: list[InstanceMetadata], *, pixel_data_url: Callable[[Instance], str]) -> str:
    """The DICOM JSON array of ``rows``, each image's Pixel Data as a BulkDataURI."""
    parts = []
    for row in rows:
        text = row.dicom_json
        if row.pixel_vr:
            reference = json.dumps({"vr": row.pixel_vr, "BulkDataURI": pixel_data_url(row.instance)})
            text = f'{text[:-1]}{"," if text != "{}" else ""}"{PIXEL_DATA}":{reference}}}'
        parts.append(text)
    return "[" + ",".join(parts) + "]"
