"""What the study page's viewer shows: series, their slices, windows and presets; and the
checks on the image endpoint's viewer parameters (window, thumbnail size)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pydicom
from django.urls import reverse
from pydicom.pixels import apply_modality_lut

from medportal.imaging.models import Instance, Series, Study
from medportal.imaging.pixels import decoded_frame
from medportal.imaging.storage import blob_read

# Limits on a requested window: wide enough for any 16-bit image after its rescale
# (CT is -1024..3071 HU), narrow enough that nonsense is refused rather than rendered.
WINDOW_CENTER_LIMIT = 100_000.0
WINDOW_WIDTH_LIMIT = 200_000.0
THUMBNAIL_SIZES = range(32, 513)  # ?size=, in pixels, the longer side
THUMBNAIL_SIZE = 128  # the series strip's

# Presets by modality: (name, centre, width). Every modality also has "default", the
# header's own window (no parameters at all), and "reset".
WINDOW_PRESETS: dict[str, list[tuple[str, float, float]]] = {
    "CT": [
        ("lung", -600, 1500),
        ("mediastinum", 40, 400),
        ("bone", 400, 1800),
        ("brain", 40, 80),
        ("abdomen", 40, 350),
    ],
}


class ViewerParamError(ValueError):
    """A viewer parameter that cannot be honoured; its message says why (a 400)."""


@dataclass(frozen=True)
class Window:
    center: float
    width: float

    @property
    def wc(self) -> str:
        return _number(self.center)

    @property
    def ww(self) -> str:
        return _number(self.width)

    @property
    def query(self) -> str:
        return f"wc={self.wc}&ww={self.ww}"


@dataclass(frozen=True)
class ImageParams:
    window: Window | None = None
    size: int | None = None

    def etag_part(self) -> str:
        window = f"w{_number(self.window.center)}_{_number(self.window.width)}" if self.window else "wh"
        return f"{window}-s{self.size or 0}"

    def audit_detail(self) -> dict:
        detail: dict = {}
        if self.window:
            detail["window"] = [self.window.center, self.window.width]
        if self.size:
            detail["size"] = self.size
        return detail


def _number(value: float) -> str:
    """Shortest spelling: 40 not 40.0, so URLs and ETags of one window are one string."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _finite(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ViewerParamError(f"{name} must be a number, not {raw[:20]!r}") from None
    if not math.isfinite(value):
        raise ViewerParamError(f"{name} must be a finite number")
    return round(value, 2)


def image_params(query: Mapping[str, str]) -> ImageParams:
    """``wc``/``ww`` (both or neither) and ``size`` from an image URL's query string."""
    center, width = query.get("wc"), query.get("ww")
    window = None
    if (center is None) != (width is None):
        raise ViewerParamError("a window needs both wc (centre) and ww (width)")
    if center is not None and width is not None:
        c, w = _finite(center, "wc"), _finite(width, "ww")
        if abs(c) > WINDOW_CENTER_LIMIT:
            raise ViewerParamError(
                f"wc must lie between {-WINDOW_CENTER_LIMIT:g} and {WINDOW_CENTER_LIMIT:g}"
            )
        if not 1 <= w <= WINDOW_WIDTH_LIMIT:
            raise ViewerParamError(f"ww must lie between 1 and {WINDOW_WIDTH_LIMIT:g}")
        window = Window(c, w)
    size = None
    if (raw := query.get("size")) is not None:
        try:
            size = int(raw)
        except ValueError:
            raise ViewerParamError(f"size must be a whole number, not {raw[:20]!r}") from None
        if size not in THUMBNAIL_SIZES:
            raise ViewerParamError(f"size must lie between {THUMBNAIL_SIZES[0]} and {THUMBNAIL_SIZES[-1]}")
    return ImageParams(window=window, size=size)


@dataclass
class SeriesView:
    series: Series
    slices: list[tuple[int, int]]  # (instance id, frame) in reading order
    window: Window | None  # where window/level by drag starts; None: not windowable (colour, PNG)
    presets: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def slices_attr(self) -> str:
        """The slices for viewer.js, compact: "id:frame,id:frame,..."."""
        return ",".join(f"{pk}:{frame}" for pk, frame in self.slices)

    @property
    def presets_attr(self) -> str:
        """The presets for viewer.js: "name:centre:width,..."."""
        return ",".join(f"{name}:{_number(c)}:{_number(w)}" for name, c, w in self.presets)

    @property
    def thumbnail_url(self) -> str:
        pk, frame = self.slices[0]
        return image_url(pk, frame, size=THUMBNAIL_SIZE)


def image_url(
    instance_id: int, frame: int = 0, *, window: Window | None = None, size: int | None = None
) -> str:
    """The image endpoint's URL, spelled as viewer.js spells it (one cache entry per image)."""
    query = [f"frame={frame}"] if frame else []
    if window:
        query.append(window.query)
    if size:
        query.append(f"size={size}")
    url = reverse("instance-image", args=[instance_id])
    return f"{url}?{'&'.join(query)}" if query else url


@dataclass
class StudyViewer:
    series: list[SeriesView]
    current: SeriesView | None
    position: int  # index into current.slices
    window: Window | None  # requested in the page's URL, else None (the header's)
    # Stored objects that are not images (reports, presentation states, PDFs, RT, waveforms).
    others: list[Instance] = field(default_factory=list)

    @property
    def instance_id(self) -> int | None:
        return self.current.slices[self.position][0] if self.current else None

    @property
    def image_url(self) -> str:
        assert self.current is not None
        return image_url(*self.current.slices[self.position], window=self.window)

    def _link(self, *, position: int, window: Window | None) -> str:
        assert self.current is not None
        query = f"?series={self.current.series.pk}&slice={position + 1}"
        return query + (f"&{window.query}" if window else "") + "#viewer"

    @property
    def previous_link(self) -> str | None:
        return self._link(position=self.position - 1, window=self.window) if self.position > 0 else None

    @property
    def next_link(self) -> str | None:
        if self.current is None or self.position + 1 >= len(self.current.slices):
            return None
        return self._link(position=self.position + 1, window=self.window)

    @property
    def default_link(self) -> str:
        return self._link(position=self.position, window=None)

    @property
    def preset_links(self) -> list[tuple[str, Window, str]]:
        """(name, window, link) for the current series' modality."""
        if self.current is None or self.current.window is None:
            return []
        return [
            (name, Window(c, w), self._link(position=self.position, window=Window(c, w)))
            for name, c, w in self.current.presets
        ]


def viewer_request(query: Mapping[str, str]) -> dict:
    """``series``, ``slice`` (1-based, as the counter shows it) and a window from the study
    page's URL, for ``study_viewer``. Nonsense is ignored: the page still shows the study."""

    def whole(name: str) -> int | None:
        try:
            return int(query.get(name, ""))
        except ValueError:
            return None

    try:
        window = image_params({k: v for k, v in query.items() if k in {"wc", "ww"}}).window
    except ViewerParamError:
        window = None
    return {"series_id": whole("series"), "position": (whole("slice") or 1) - 1, "window": window}


def _header_window(instance: Instance) -> Window | None:
    """Where window/level starts for a series: its first image's header window, else the
    range of its pixels (what the default rendering stretches to grey)."""
    if instance.content_type != Instance.DICOM:
        return None
    try:
        return _dicom_window(pydicom.dcmread(io.BytesIO(blob_read(instance.sha256))))
    except Exception:  # a file stored before ingest was strict: the page still shows the study
        return None


def _dicom_window(ds) -> Window | None:
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        return None
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        center = center[0] if isinstance(center, pydicom.multival.MultiValue) else center
        width = width[0] if isinstance(width, pydicom.multival.MultiValue) else width
        try:
            if float(width) >= 1:
                return Window(round(float(center), 2), round(float(width), 2))
        except (TypeError, ValueError):
            pass  # a malformed header window: start from the pixels' range instead
    values = np.asarray(apply_modality_lut(decoded_frame(ds, 0), ds), dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    return Window(round((low + high) / 2 + 0.5, 2), round(max(high - low + 1, 1), 2))


def study_viewer(
    *, study: Study, series_id: int | None = None, position: int = 0, window: Window | None = None
) -> StudyViewer:
    """The viewer's state for a study page: every series with its slices (instances in
    instance-number order, each frame of a multi-frame instance in turn), the series and
    slice asked for (the first when absent or out of range), and the window asked for."""
    instances = Instance.objects.filter(series__study=study).select_related("series")
    by_series: dict[int, SeriesView] = {}
    first: dict[int, Instance] = {}
    others = []
    for instance in instances.order_by("series__series_number", "series_id", "instance_number", "id"):
        if not instance.is_image:
            others.append(instance)
            continue
        view = by_series.get(instance.series_id)
        if view is None:
            view = by_series[instance.series_id] = SeriesView(instance.series, [], None)
            view.presets = WINDOW_PRESETS.get(instance.series.modality.upper(), [])
            first[instance.series_id] = instance
        view.slices += [(instance.pk, frame) for frame in range(max(instance.number_of_frames, 1))]
    for pk, view in by_series.items():
        # One header read per series (a pixel decode only where the header has no window).
        view.window = _header_window(first[pk])
    current = by_series.get(series_id) if series_id is not None else None
    current = current or next(iter(by_series.values()), None)
    position = min(max(position, 0), len(current.slices) - 1) if current else 0
    return StudyViewer(
        series=list(by_series.values()), current=current, position=position, window=window, others=others
    )
