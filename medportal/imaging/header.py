"""An instance's DICOM header as rows for the viewer's header table."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from medportal.imaging.models import Instance
from medportal.imaging.storage import blob_read

VALUE_LIMIT = 160  # characters of a value shown; the rest is cut with "…"
ITEM_LIMIT = 25  # items shown of one sequence
BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
PIXEL_GROUP = 0x7FE0  # Pixel Data, Float/Double Float Pixel Data


@dataclass(frozen=True)
class HeaderRow:
    tag: str  # "(0010,0020)"; empty for a sequence item's own row
    name: str
    keyword: str
    vr: str
    value: str
    depth: int  # nesting inside sequences, for indentation


def _shown(element: DataElement) -> bool:
    """Private tags can hold anything (vendors put PHI and binary blobs there) and pixel or
    overlay data is not text: neither belongs in the table."""
    tag = element.tag
    if tag.is_private or tag.group == PIXEL_GROUP:
        return False
    return not (0x6000 <= tag.group <= 0x601E and tag.element == 0x3000)  # Overlay Data


def _truncated(text: str) -> str:
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"


def _value(element: DataElement) -> str:
    value = element.value
    if element.VR in BINARY_VRS or isinstance(value, bytes | bytearray):
        return f"({len(value or b'')} bytes of binary data)"
    if value is None or value == "":
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return _truncated("\\".join(str(v) for v in value))
    return _truncated(str(value))


def _rows(ds: Dataset, depth: int) -> list[HeaderRow]:
    rows: list[HeaderRow] = []
    for element in ds:
        if not _shown(element):
            continue
        tag = f"({element.tag.group:04X},{element.tag.element:04X})"
        if element.VR == "SQ":
            items = element.value or []
            rows.append(HeaderRow(tag, element.name, element.keyword, "SQ", f"{len(items)} item(s)", depth))
            for number, item in enumerate(items[:ITEM_LIMIT], start=1):
                rows.append(HeaderRow("", f"Item {number}", "", "", "", depth + 1))
                rows += _rows(item, depth + 2)
            if len(items) > ITEM_LIMIT:
                rows.append(HeaderRow("", f"… {len(items) - ITEM_LIMIT} more items", "", "", "", depth + 1))
        else:
            rows.append(HeaderRow(tag, element.name, element.keyword, element.VR, _value(element), depth))
    return rows


def instance_header(*, instance: Instance) -> list[HeaderRow]:
    """The file meta and data set attributes, in tag order; empty for a PNG or JPEG."""
    if instance.content_type != Instance.DICOM:
        return []
    ds = pydicom.dcmread(io.BytesIO(blob_read(instance.sha256)), stop_before_pixels=True)
    return _rows(ds.file_meta, 0) + _rows(ds, 0)
