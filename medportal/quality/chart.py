"""Line charts of values from 0 to 1 as SVG geometry, drawn by the template (no JavaScript).

One line per model version over the summary's periods. A period
without outcomes breaks the line rather than joining its neighbours across the gap.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass

from medportal.quality.selectors import GroupStats, TimeSeries

# Okabe-Ito: told apart with the common colour vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
WIDTH, PLOT_HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 20, 14, 30
LEGEND_ROW = 20
MAX_X_LABELS = 8
PERIOD_WORDS = {"day": "day", "week": "week from", "month": "month"}


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    text: str  # its tooltip


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    path: str
    points: list[Point]
    legend_y: float


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    description: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    lines: list[Line]

    @property
    def y_label_x(self) -> int:
        return self.left - 6

    @property
    def x_label_y(self) -> int:
        return self.bottom + 18

    @property
    def legend_text_x(self) -> int:
        return self.left + 22


def period_label(day: datetime.date, period: str) -> str:
    return day.strftime("%b %Y") if period == "month" else f"{day.day} {day.strftime('%b')}"


def share_chart(
    *,
    id: str,
    title: str,
    periods: list[datetime.date],
    period: str,
    series: list[TimeSeries],
    value: Callable[[GroupStats], float],
    percent: bool = True,
) -> Chart:
    """One line per series of ``value`` (0..1: a share in %, else a fraction) over ``periods``."""

    def text(v: float) -> str:
        return f"{v:.0%}" if percent else f"{v:.2f}"

    bottom = TOP + PLOT_HEIGHT
    right = WIDTH - RIGHT
    step = (right - LEFT) / (len(periods) - 1) if len(periods) > 1 else 0
    x_of = {p: LEFT + i * step if len(periods) > 1 else (LEFT + right) / 2 for i, p in enumerate(periods)}
    index = {p: i for i, p in enumerate(periods)}

    def y_of(v: float) -> float:
        return round(bottom - max(0.0, min(1.0, v)) * PLOT_HEIGHT, 1)

    lines = []
    for n, one in enumerate(series):
        commands, points, previous = [], [], None
        for stats in one.points:
            x, y = round(x_of[stats.period], 1), y_of(value(stats))
            joined = previous is not None and index[stats.period] == previous + 1
            commands.append(f"{'L' if joined else 'M'}{x} {y}")
            previous = index[stats.period]
            points.append(
                Point(
                    x,
                    y,
                    f"{one.label}, {PERIOD_WORDS[period]} {stats.period.isoformat()}: "
                    f"{text(value(stats))} ({stats.count} report{'' if stats.count == 1 else 's'})",
                )
            )
        lines.append(
            Line(
                label=one.label,
                colour=PALETTE[n % len(PALETTE)],
                path=" ".join(commands),
                points=points,
                legend_y=bottom + BOTTOM + 10 + n * LEGEND_ROW,
            )
        )
    every = max(1, math.ceil(len(periods) / MAX_X_LABELS))
    return Chart(
        id=id,
        title=title,
        description=(
            f"One line per model version, one point per {period}. The table below gives the same numbers."
        ),
        width=WIDTH,
        height=bottom + BOTTOM + 10 + len(series) * LEGEND_ROW,
        left=LEFT,
        right=right,
        top=TOP,
        bottom=bottom,
        x_ticks=[Tick(round(x_of[p], 1), period_label(p, period)) for p in periods[::every]],
        y_ticks=[Tick(y_of(v), text(v)) for v in (0, 0.25, 0.5, 0.75, 1)],
        lines=lines,
    )
