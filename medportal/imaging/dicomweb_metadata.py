"""WADO-RS metadata (PS3.18 10.4.1.1.2) from headers converted once, with Pixel Data by reference.

A viewer opening a 500-slice series asks for its metadata, and asks again on the next visit.
Reading 500 files' headers and converting them to DICOM JSON for each answer took seconds
(bench figures in the README); the JSON of each instance is made once, from its stored file,
and kept in the database (``InstanceMetadata``). Pixel Data is never inline: it is a
BulkDataURI, the instance's ``/pixeldata`` resource.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from pydicom.uid import UID

from medportal.imaging.dicomweb_json import metadata_json
from medportal.imaging.dicomweb_retrieve import instance_header
from medportal.imaging.models import Instance, InstanceMetadata

# Bumped when the conversion changes: rows of an older version are made again on first read.
METADATA_VERSION = 1
PIXEL_DATA = "7FE00010"


def _convert(instance: Instance) -> InstanceMetadata:
    header = instance_header(instance)
    pixel_vr = ""
    if instance.rows is not None and instance.columns is not None:
        encapsulated = UID(header.file_meta.TransferSyntaxUID).is_encapsulated
        pixel_vr = "OB" if encapsulated or int(header.get("BitsAllocated", 16)) <= 8 else "OW"
    text = json.dumps(metadata_json(header), separators=(",", ":"))
    return InstanceMetadata(
        instance=instance,
        sha256=instance.sha256,
        version=METADATA_VERSION,
        dicom_json=text,
        pixel_vr=pixel_vr,
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
            update_fields=["sha256", "version", "dicom_json", "pixel_vr"],
        )
    return rows


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
