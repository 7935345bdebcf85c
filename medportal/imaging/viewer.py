"""The checks on the image endpoint's parameters (window, thumbnail size). The image endpoint
renders on the server only thumbnails, the model's images and the PDF's; people read studies in
the OHIF Viewer (medportal/ohif), which draws the images in the browser."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

# Limits on a requested window: wide enough for any 16-bit image after its rescale
# (CT is -1024..3071 HU), narrow enough that nonsense is refused rather than rendered.
WINDOW_CENTER_LIMIT = 100_000.0
WINDOW_WIDTH_LIMIT = 200_000.0
THUMBNAIL_SIZES = range(32, 513)  # ?size=, in pixels, the longer side
THUMBNAIL_SIZE = 128  # a thumbnail's, when no size is asked for


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
