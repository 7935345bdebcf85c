"""The AI quality figures: outcomes grouped by model version, modality, radiologist and time.

Medians are computed here rather than in SQL so that the same code serves PostgreSQL and
the embedded SQLite (which has no percentile function): one query reads the few columns of
the filtered outcomes into numpy arrays, and each group is a slice of them.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import numpy as np
from django.db.models import QuerySet
from django.db.models.functions import TruncDate

from medportal.quality.models import DraftOutcome, model_version_label

# Up to this many days a point is a day, up to a year a week (from Monday), beyond a month.
DAILY_UP_TO_DAYS = 31
WEEKLY_UP_TO_DAYS = 366


@dataclass(frozen=True)
class QualityFilters:
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    model_id: str | None = None
    model_revision: str | None = None
    modality: str = ""
    radiologist_id: int | None = None

    def as_detail(self) -> dict:
        """The query as it is stored in the audit event that records it."""
        return {k: str(v) for k, v in self.__dict__.items() if v not in ("", None)}


def quality_outcomes(filters: QualityFilters) -> QuerySet[DraftOutcome]:
    outcomes = DraftOutcome.objects.all()
    if filters.date_from:
        outcomes = outcomes.filter(signed_at__date__gte=filters.date_from)
    if filters.date_to:
        outcomes = outcomes.filter(signed_at__date__lte=filters.date_to)
    if filters.model_id is not None:
        outcomes = outcomes.filter(model_id=filters.model_id, model_revision=filters.model_revision or "")
    if filters.modality:
        outcomes = outcomes.filter(modality=filters.modality)
    if filters.radiologist_id is not None:
        outcomes = outcomes.filter(radiologist_id=filters.radiologist_id)
    return outcomes


@dataclass(frozen=True)
class GroupStats:
    label: str
    count: int
    mean_distance: float
    median_distance: float
    mean_similarity: float
    median_similarity: float
    accepted_share: float
    median_seconds_to_sign: float
    period: datetime.date | None = None

    @property
    def median_time_to_sign(self) -> str:
        return duration_text(self.median_seconds_to_sign)


class _Columns:
    """The filtered outcomes as arrays, with a code per row for each way of grouping them."""

    def __init__(self, outcomes: QuerySet[DraftOutcome]):
        models: dict[str, int] = {}
        modalities: dict[str, int] = {}
        people: dict[int, int] = {}
        self.radiologist_labels: list[str] = []
        codes: list[tuple[int, int, int, int]] = []
        measures: list[list] = []
        rows = outcomes.annotate(day=TruncDate("signed_at")).values_list(
            "model_id", "model_revision", "modality", "radiologist_id", "radiologist__username",
            "radiologist__first_name", "radiologist__last_name", "day", "edit_distance", "similarity",
            "accepted_unchanged", "seconds_to_sign",
        )  # fmt: skip
        for model_id, revision, modality, person, username, first, last, day, *measure in rows.iterator(
            chunk_size=5000
        ):
            if person not in people:
                people[person] = len(people)
                self.radiologist_labels.append(person_label(username, first, last))
            model = models.setdefault(model_version_label(model_id, revision), len(models))
            codes.append(
                (
                    model,
                    modalities.setdefault(modality or "(none)", len(modalities)),
                    people[person],
                    day.toordinal(),
                )
            )
            measures.append(measure)
        self.model_labels, self.modality_labels = list(models), list(modalities)
        self.count = len(codes)
        code_columns = np.array(codes, dtype=np.int64).reshape(-1, 4).T
        self.model, self.modality, self.radiologist, self.day = code_columns
        self.distance, self.similarity, unchanged, self.seconds = (
            np.array(measures, dtype=np.float64).reshape(-1, 4).T
        )
        self.unchanged = unchanged.astype(np.bool_)

    def stats(self, label: str, rows: np.ndarray, period: datetime.date | None = None) -> GroupStats:
        """The figures of the outcomes at positions ``rows``."""
        distance, similarity = self.distance[rows], self.similarity[rows]
        return GroupStats(
            label=label,
            count=len(rows),
            mean_distance=float(distance.mean()),
            median_distance=float(np.median(distance)),
            mean_similarity=float(similarity.mean()),
            median_similarity=float(np.median(similarity)),
            accepted_share=float(self.unchanged[rows].mean()),
            median_seconds_to_sign=float(np.median(self.seconds[rows])),
            period=period,
        )


def _groups(codes: np.ndarray) -> list[np.ndarray]:
    """The positions of the rows of each code, codes in increasing order."""
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)


def duration_text(seconds: float) -> str:
    """A duration the way people say it: 45 s, 12 min, 3 h 20 min, 2 d 4 h."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def period_for(first: datetime.date, last: datetime.date) -> str:
    span = (last - first).days + 1
    if span <= DAILY_UP_TO_DAYS:
        return "day"
    return "week" if span <= WEEKLY_UP_TO_DAYS else "month"


def period_start(day: datetime.date, period: str) -> datetime.date:
    if period == "week":
        return day - datetime.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def period_starts(first: datetime.date, last: datetime.date, period: str) -> list[datetime.date]:
    """Every period from the one holding ``first`` to the one holding ``last``, empty ones too."""
    starts, current = [], period_start(first, period)
    while current <= last:
        starts.append(current)
        if period == "month":
            current = (current + datetime.timedelta(days=32)).replace(day=1)
        else:
            current += datetime.timedelta(days=1 if period == "day" else 7)
    return starts


@dataclass(frozen=True)
class TimeSeries:
    """One model version's figures per period (only the periods it has outcomes in)."""

    label: str
    points: list[GroupStats]


@dataclass
class QualitySummary:
    period: str = "day"
    overall: GroupStats | None = None
    by_model: list[GroupStats] = field(default_factory=list)
    by_modality: list[GroupStats] = field(default_factory=list)
    by_radiologist: list[GroupStats] = field(default_factory=list)
    periods: list[datetime.date] = field(default_factory=list)
    over_time: list[TimeSeries] = field(default_factory=list)

    @property
    def over_time_rows(self) -> list[GroupStats]:
        """The chart's numbers as table rows: by period, then model version."""
        rows = [point for series in self.over_time for point in series.points]
        return sorted(rows, key=lambda p: (p.period, p.label))


def person_label(username: str, first_name: str, last_name: str) -> str:
    """The full name with the user name (unique, so two people never share a row)."""
    full_name = f"{first_name} {last_name}".strip()
    return f"{full_name} ({username})" if full_name else username


def _grouped(columns: _Columns, codes: np.ndarray, labels: list[str]) -> list[GroupStats]:
    stats = [columns.stats(labels[codes[rows[0]]], rows) for rows in _groups(codes)]
    return sorted(stats, key=lambda s: s.label)


def quality_summary(filters: QualityFilters) -> QualitySummary:
    """Count, edit distance, similarity, share accepted unchanged and time to sign, per group."""
    columns = _Columns(quality_outcomes(filters))
    if not columns.count:
        return QualitySummary()
    days, day_of_row = np.unique(columns.day, return_inverse=True)
    first = filters.date_from or datetime.date.fromordinal(int(days[0]))
    last = filters.date_to or datetime.date.fromordinal(int(days[-1]))
    period = period_for(first, last)
    periods = period_starts(first, last, period)
    position = {start: i for i, start in enumerate(periods)}
    period_of_day = np.array(
        [position[period_start(datetime.date.fromordinal(int(d)), period)] for d in days]
    )
    # One code per (model version, period): the points of the lines over time.
    points = columns.model * len(periods) + period_of_day[day_of_row]
    series: dict[str, list[GroupStats]] = {}
    for rows in _groups(points):
        model, at = divmod(int(points[rows[0]]), len(periods))
        label = columns.model_labels[model]
        series.setdefault(label, []).append(columns.stats(label, rows, period=periods[at]))
    return QualitySummary(
        period=period,
        overall=columns.stats("All", np.arange(columns.count)),
        by_model=_grouped(columns, columns.model, columns.model_labels),
        by_modality=_grouped(columns, columns.modality, columns.modality_labels),
        by_radiologist=_grouped(columns, columns.radiologist, columns.radiologist_labels),
        periods=periods,
        over_time=[TimeSeries(label=label, points=series[label]) for label in sorted(series)],
    )


def filter_choices() -> dict[str, list[tuple[str, str]]]:
    """What the filters offer: the model versions, modalities and radiologists measured."""
    models = DraftOutcome.objects.values_list("model_id", "model_revision").distinct()
    modalities = DraftOutcome.objects.exclude(modality="").values_list("modality", flat=True).distinct()
    radiologists = DraftOutcome.objects.values_list(
        "radiologist_id", "radiologist__username", "radiologist__first_name", "radiologist__last_name"
    ).distinct()
    return {
        "model": sorted(
            (model_version_key(model_id, revision), model_version_label(model_id, revision))
            for model_id, revision in models
        ),
        "modality": sorted((m, m) for m in modalities),
        "radiologist": sorted(
            ((str(pk), person_label(*names)) for pk, *names in radiologists), key=lambda c: c[1]
        ),
    }


def model_version_key(model_id: str, model_revision: str) -> str:
    """A model version as one URL value; the form maps it back through its choices."""
    return f"{model_id}@{model_revision}"
