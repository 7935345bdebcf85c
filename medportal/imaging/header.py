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


def _unreadable(tag: str, exc: Exception, depth: int) -> HeaderRow:
    return HeaderRow(tag, "(cannot be read)", "", "", _truncated(str(exc) or type(exc).__name__), depth)


def _rows(ds: Dataset, depth: int) -> list[HeaderRow]:
    """Each element as a row; one that cannot be read says so and the rest are still shown."""
    rows: list[HeaderRow] = []
    for key in list(ds.keys()):
        tag = f"({key.group:04X},{key.element:04X})"
        try:
            element = ds[key]
            if not _shown(element):
                continue
            rows += _element_rows(element, tag, depth)
        except Exception as exc:  # a stored file from before ingest was strict, or a corrupt value
            rows.append(_unreadable(tag, exc, depth))
    return rows


def _element_rows(element: DataElement, tag: str, depth: int) -> list[HeaderRow]:
    if element.VR != "SQ":
        return [HeaderRow(tag, element.name, element.keyword, element.VR, _value(element), depth)]
    items = element.value or []
    rows = [HeaderRow(tag, element.name, element.keyword, "SQ", f"{len(items)} item(s)", depth)]
    for number, item in enumerate(items[:ITEM_LIMIT], start=1):
        rows.append(HeaderRow("", f"Item {number}", "", "", "", depth + 1))
        rows += _rows(item, depth + 2)
    if len(items) > ITEM_LIMIT:
        rows.append(HeaderRow("", f"… {len(items) - ITEM_LIMIT} more items", "", "", "", depth + 1))
    return rows


def instance_header(*, instance: Instance) -> list[HeaderRow]:
    """The file meta and data set attributes, in tag order; empty for a PNG or JPEG."""
    if instance.content_type != Instance.DICOM:
        return []
    data = blob_read(instance.sha256)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    except Exception as exc:  # what a lenient read gets, then why the rest is missing
        try:
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        except Exception:
            return [_unreadable("", exc, 0)]
    return _rows(ds.file_meta, 0) + _rows(ds, 0)
