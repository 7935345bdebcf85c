"""A CT or MR study as the model reads it: one series, its slices in order, at most 85 sampled.

Which series (every rule is checked on the headers alone, read without their pixels):

1. its slices are of the study's modality (CT or MR) and not localizers (Image Type
   LOCALIZER); a multi-frame Enhanced CT/MR instance gives one slice per frame, its position
   and orientation from the per-frame (else shared) functional groups;
2. every slice has the same Image Orientation (Patient), and it is **axial**: the slice
   normal (row × column direction) points mostly along the patient's head-foot axis (its
   largest component is z; a tilted gantry is still axial, a sagittal or coronal series is not);
3. every slice has the same size and the same Slice Thickness;
4. the spacing is consistent: sorted along the normal, no two slices share a position and no
   gap differs from the median gap by more than 10 %;
5. it has at least 5 slices.

Of the series that pass, the one with the most slices; a tie goes to the lower Series Number.
Every series considered, and why it was or was not chosen, is recorded in the draft's
provenance.

Order: by Image Position (Patient) projected on the slice normal, ascending (for a standard
axial series, feet to head); only where a slice has no position, by Instance Number.
Sampling: as Google's CT notebook (high_dimensional_ct_hugging_face.ipynb), when a series
has more than 85 slices, slice ``int(round(i / 85 * (n - 1)))`` for ``i = 1 … 85`` (Python's
round: halves to even). Only the sampled slices are decoded.
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pydicom
from PIL import Image

from inference_worker.pixel_source import instance_bytes, instance_header, instance_scan
from inference_worker.preprocessing import CT_WINDOWS, ct_rgb_image, model_size, mr_rgb
from inference_worker.slice_scan import NativePixels, ScannedHeader
from medportal.imaging.models import Instance, Series, Study
from medportal.imaging.pixels import decoded_frame

MAX_SLICES = 85  # the reference notebook's
MIN_SLICES = 5
SPACING_TOLERANCE = 0.10  # of the median gap
VOLUME_MODALITIES = frozenset({"CT", "MR"})


# What ordering a series needs of each header (the rest is not even converted).
HEADER_TAGS = [
    "ImageType",
    "InstanceNumber",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "SliceThickness",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
]


def series_header(instance: Instance) -> pydicom.Dataset:
    return instance_header(instance, HEADER_TAGS)


@dataclass(frozen=True)
class SliceHeader:
    """One slice: an instance, or one frame of a multi-frame instance."""

    instance: Instance
    frame: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    thickness: float | None
    instance_number: int | None
    size: tuple[int, int]
    localizer: bool
    # Where its pixels lie in the file, when a scan of the header found them plain (native,
    # single frame, greyscale): decoded then without pydicom.
    pixels: NativePixels | None = field(default=None, compare=False, repr=False)


@dataclass
class Volume:
    """The chosen series, its slices in order, and the ones the model is given."""

    series: Series
    slices: list[SliceHeader]
    sampled: list[SliceHeader]
    spacing_mm: float | None
    ordered_by: str  # "position along the slice normal" or "instance number"
    considered: list[dict] = field(default_factory=list)

    @property
    def thickness_mm(self) -> float | None:
        return self.slices[0].thickness


class NoVolume(Exception):
    """No series of the study can be read as a volume; the message says why, series by series."""

    def __init__(self, message: str, considered: list[dict]):
        super().__init__(message)
        self.considered = considered


def sample_indices(count: int, limit: int = MAX_SLICES) -> list[int]:
    """Which of ``count`` ordered slices the model sees: all, or ``limit`` of them uniformly
    as the reference notebook samples them."""
    if count <= limit:
        return list(range(count))
    return [int(round(i / limit * (count - 1))) for i in range(1, limit + 1)]


def _floats(value, count: int) -> tuple[float, ...] | None:
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count else None


def _first_item(ds, sequence: str):
    items = ds.get(sequence)
    return items[0] if items else None


def _functional(ds, frame_item, group: str, attribute: str):
    """An attribute from a frame's functional group, else the shared one, else the top level."""
    for source in (frame_item, _first_item(ds, "SharedFunctionalGroupsSequence")):
        item = _first_item(source, group) if source is not None else None
        if item is not None and attribute in item:
            return item.get(attribute)
    return ds.get(attribute)


def slice_headers(instance: Instance, ds: pydicom.Dataset) -> list[SliceHeader]:
    """The slices of one instance's header: one, or one per frame of an enhanced instance."""
    localizer = "LOCALIZER" in [str(v).upper() for v in (ds.get("ImageType") or [])]
    size = (int(ds.get("Rows") or 0), int(ds.get("Columns") or 0))
    number = ds.get("InstanceNumber")
    number = int(number) if number not in (None, "") else None
    frames = ds.get("PerFrameFunctionalGroupsSequence")
    if frames:
        return [
            SliceHeader(
                instance=instance,
                frame=index,
                position=_floats(_functional(ds, item, "PlanePositionSequence", "ImagePositionPatient"), 3),
                orientation=_floats(
                    _functional(ds, item, "PlaneOrientationSequence", "ImageOrientationPatient"), 6
                ),
                thickness=_thickness(_functional(ds, item, "PixelMeasuresSequence", "SliceThickness")),
                instance_number=number,
                size=size,
                localizer=localizer,
            )
            for index, item in enumerate(frames)
        ]
    return [
        SliceHeader(
            instance=instance,
            frame=0,
            position=_floats(ds.get("ImagePositionPatient"), 3),
            orientation=_floats(ds.get("ImageOrientationPatient"), 6),
            thickness=_thickness(ds.get("SliceThickness")),
            instance_number=number,
            size=size,
            localizer=localizer,
        )
    ]


def scanned_slices(instance: Instance, scanned: ScannedHeader) -> list[SliceHeader]:
    """``slice_headers`` of a header read by ``slice_scan`` (single-frame: it leaves functional
    groups to pydicom)."""
    position, orientation = scanned.position, scanned.orientation
    return [
        SliceHeader(
            instance=instance,
            frame=0,
            position=position if position is not None and len(position) == 3 else None,
            orientation=orientation if orientation is not None and len(orientation) == 6 else None,
            thickness=scanned.thickness,
            instance_number=scanned.instance_number,
            size=(scanned.rows, scanned.columns),
            localizer="LOCALIZER" in [v.upper() for v in scanned.image_type],
            pixels=scanned.pixels,
        )
    ]


def instance_slices(instance: Instance) -> list[SliceHeader]:
    """The slices of one stored instance: from a scan of its first bytes where it is the plain
    case, else from its header read by pydicom."""
    scanned = instance_scan(instance)
    if scanned is not None:
        return scanned_slices(instance, scanned)
    return slice_headers(instance, series_header(instance))


def _thickness(value) -> float | None:
    try:
        return round(float(value), 3) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _normal(orientation: tuple[float, ...]) -> np.ndarray:
    return np.cross(np.array(orientation[:3]), np.array(orientation[3:]))


def plane_name(orientation: tuple[float, ...]) -> str:
    """axial, sagittal or coronal: the patient axis the slice normal points along most."""
    return ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(_normal(orientation))))]


def _same_orientation(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    # numpy.allclose(a, b, atol=1e-3) in plain Python (it is asked once per slice): equal
    # infinities are close, an infinity is not close to a number, a NaN to nothing.
    return len(a) == len(b) and all(
        x == y or (math.isfinite(x - y) and abs(x - y) <= 1e-3 + 1e-5 * abs(y))
        for x, y in zip(a, b, strict=True)
    )


def _ordered(slices: list[SliceHeader]) -> tuple[list[SliceHeader], str, list[float]]:
    """The slices in order, how they were ordered, and their positions along the normal."""
    if all(s.position is not None for s in slices):
        normal = _normal(slices[0].orientation)
        distance = {id(s): float(np.dot(np.array(s.position), normal)) for s in slices}
        ordered = sorted(slices, key=lambda s: distance[id(s)])
        return ordered, "position along the slice normal", [distance[id(s)] for s in ordered]
    ordered = sorted(slices, key=lambda s: (s.instance_number is None, s.instance_number or 0, s.frame))
    return ordered, "instance number", []


def series_verdict(series: Series, slices: list[SliceHeader]) -> tuple[str, Volume | None]:
    """Why ``series`` cannot be the volume, or "" and its volume (not yet sampled)."""
    slices = [s for s in slices if not s.localizer]
    if not slices:
        return "a localizer", None
    orientations = [s.orientation for s in slices]
    if any(o is None for o in orientations):
        return "slices without Image Orientation (Patient)", None
    if not all(_same_orientation(orientations[0], o) for o in orientations):
        return "slices of different orientations", None
    plane = plane_name(orientations[0])
    if plane != "axial":
        return f"{plane}, not axial", None
    if len({s.size for s in slices}) > 1:
        return "slices of different sizes", None
    if len({s.thickness for s in slices}) > 1:
        return "slices of different thicknesses", None
    if len(slices) < MIN_SLICES:
        return (
            f"{len(slices)} slice{'s' if len(slices) != 1 else ''} (a volume has at least {MIN_SLICES})",
            None,
        )
    ordered, ordered_by, distances = _ordered(slices)
    spacing = None
    if distances:
        gaps = [b - a for a, b in zip(distances, distances[1:], strict=False)]
        median = statistics.median(gaps)
        if min(gaps) <= 1e-3 or median <= 1e-3:
            return "two slices at the same position", None
        if any(abs(gap - median) > SPACING_TOLERANCE * median for gap in gaps):
            return f"uneven spacing (gaps from {min(gaps):.2f} to {max(gaps):.2f} mm)", None
        spacing = round(median, 3)
    return "", Volume(series=series, slices=ordered, sampled=[], spacing_mm=spacing, ordered_by=ordered_by)


def study_volume(
    study: Study,
    modality: str,
    *,
    header: Callable[[Instance], pydicom.Dataset] | None = None,
    limit: int = MAX_SLICES,
) -> Volume:
    """The study's volume as the rules above choose it, with the slices the model sees.

    Headers come from ``instance_slices`` (a scan, else pydicom), or from ``header`` when given."""
    modality = modality.upper()
    considered: list[dict] = []
    volumes: list[Volume] = []
    for series in study.series.order_by("series_number", "id"):
        if (series.modality or study.modality).upper() != modality:
            continue
        instances = list(series.instances.filter(content_type=Instance.DICOM))
        if header is None:
            slices = [s for instance in instances for s in instance_slices(instance)]
        else:
            slices = [s for instance in instances for s in slice_headers(instance, header(instance))]
        verdict, volume = series_verdict(series, slices)
        considered.append(
            {
                "series_uid": series.series_uid,
                "series_number": series.series_number,
                "description": series.description,
                "slices": len(slices),
                "verdict": verdict or "a volume",
            }
        )
        if volume is not None:
            volumes.append(volume)
    if not volumes:
        reasons = "; ".join(
            f"series {c['series_uid'] if c['series_number'] is None else c['series_number']}: {c['verdict']}"
            for c in considered
        )
        raise NoVolume(
            f"no {modality} series of this study is an axial volume of at least {MIN_SLICES} evenly spaced "
            f"slices ({reasons or 'it has no ' + modality + ' series'})",
            considered,
        )
    chosen = max(volumes, key=lambda v: (len(v.slices), -(v.series.series_number or 0)))
    chosen.sampled = [chosen.slices[i] for i in sample_indices(len(chosen.slices), limit)]
    chosen.considered = considered
    for entry in considered:
        if entry["series_uid"] == chosen.series.series_uid:
            entry["verdict"] = "chosen"
    return chosen


def _rescale_of(ds: pydicom.Dataset, frame: int) -> tuple[float, float]:
    """A frame's Rescale Slope and Intercept (an enhanced instance's are in its functional
    groups); (1, 0) when there are none."""
    frames = ds.get("PerFrameFunctionalGroupsSequence")
    item = frames[frame] if frames else None
    slope = _functional(ds, item, "PixelValueTransformationSequence", "RescaleSlope")
    intercept = _functional(ds, item, "PixelValueTransformationSequence", "RescaleIntercept")
    return float(1 if slope in (None, "") else slope), float(0 if intercept in (None, "") else intercept)


def volume_images(volume: Volume, modality: str) -> tuple[list[Image.Image], dict]:
    """The sampled slices as the model's images, decoding each file once and only those files,
    and how they were made."""
    ct = modality.upper() == "CT"
    decoded: dict[int, pydicom.Dataset] = {}
    ct_images: list[Image.Image] = []
    mr_values: list[np.ndarray] = []
    for item in volume.sampled:
        if item.pixels is not None:
            # A plain slice: its pixels taken where the scan found them, nothing parsed.
            stored = item.pixels.array(instance_bytes(item.instance))
            slope, intercept = item.pixels.slope, item.pixels.intercept
        else:
            ds = decoded.get(item.instance.pk)
            if ds is None:
                ds = decoded[item.instance.pk] = pydicom.dcmread(io.BytesIO(instance_bytes(item.instance)))
            stored = decoded_frame(ds, item.frame)
            slope, intercept = _rescale_of(ds, item.frame)
            # A single-frame file is not needed again: free it as we go (a volume is large).
            if int(ds.get("NumberOfFrames") or 1) == 1:
                del decoded[item.instance.pk]
        # CT: Hounsfield units windowed at once (the float volume is never held); MR: kept to be
        # scaled over the whole volume below.
        if ct:
            ct_images.append(ct_rgb_image(stored, slope, intercept))
        else:
            mr_values.append(stored * slope + intercept)
    if ct:
        made, method, extra = ct_images, "ct-hu-3-windows", {"windows": [list(w) for w in CT_WINDOWS]}
    else:
        made, method, extra = [Image.fromarray(a) for a in mr_rgb(mr_values)], "mr-volume-min-max", {}
    images = [model_size(image) for image in made]
    return images, {"method": method, "size": images[0].width if images else 0, **extra}
