"""The figures per model version, modality, radiologist and period (medportal.quality.selectors)."""

from __future__ import annotations

import datetime

import pytest

from medportal.quality.models import DraftOutcome
from medportal.quality.selectors import (
    QualityFilters,
    duration_text,
    period_for,
    period_starts,
    quality_summary,
)
from tests.quality.conftest import drafted, edited, new_report

D = datetime.date


@pytest.fixture
def signed_reports(db, radiologist, second_radiologist, sign):
    """rita signs two CR drafts of rev-1 unchanged; ravi changes one word of a CT draft of rev-2."""
    for _ in range(2):
        sign(drafted(new_report("CR"), radiologist), radiologist)
    report = drafted(new_report("CT"), second_radiologist, revision="rev-2")
    report = edited(
        report,
        second_radiologist,
        "The lungs are clear.\nSmall pleural effusion.",
        "Normal chest radiograph.",
    )
    sign(report, second_radiologist)


def by_label(groups):
    return {g.label: g for g in groups}


def test_figures_per_radiologist_modality_and_model(signed_reports):
    summary = quality_summary(QualityFilters())

    assert summary.overall.count == 3
    assert summary.overall.accepted_share == pytest.approx(2 / 3)
    radiologists = by_label(summary.by_radiologist)
    assert set(radiologists) == {"rita", "ravi"}
    assert radiologists["rita"].count == 2
    assert radiologists["rita"].accepted_share == 1.0
    assert radiologists["rita"].median_distance == 0
    assert radiologists["ravi"].count == 1
    assert radiologists["ravi"].accepted_share == 0.0
    assert radiologists["ravi"].mean_distance == 5
    assert radiologists["ravi"].median_similarity < 1
    assert {g.label: g.count for g in summary.by_modality} == {"CR": 2, "CT": 1}
    assert {g.label: g.count for g in summary.by_model} == {"tiny @ rev-1": 2, "tiny @ rev-2": 1}
    assert summary.overall.median_distance == 0
    assert summary.overall.mean_distance == pytest.approx(5 / 3)


def test_filters_narrow_the_outcomes(signed_reports, second_radiologist):
    assert quality_summary(QualityFilters(modality="CT")).overall.count == 1
    assert quality_summary(QualityFilters(model_id="tiny", model_revision="rev-1")).overall.count == 2
    only_ravi = quality_summary(QualityFilters(radiologist_id=second_radiologist.pk))
    assert [g.label for g in only_ravi.by_radiologist] == ["ravi"]
    today = datetime.date.today()
    assert quality_summary(QualityFilters(date_from=today, date_to=today)).overall.count == 3
    tomorrow = today + datetime.timedelta(days=1)
    assert quality_summary(QualityFilters(date_from=tomorrow)).overall is None


def test_over_a_quarter_the_points_are_weeks_per_model(signed_reports):
    # The signed reports cannot be moved in time (they are immutable); their measures can.
    rev1 = list(DraftOutcome.objects.filter(model_revision="rev-1").order_by("pk"))
    DraftOutcome.objects.filter(pk=rev1[0].pk).update(
        signed_at=datetime.datetime(2026, 1, 6, 9, tzinfo=datetime.UTC)
    )
    DraftOutcome.objects.filter(pk=rev1[1].pk).update(
        signed_at=datetime.datetime(2026, 1, 8, 9, tzinfo=datetime.UTC)
    )
    DraftOutcome.objects.filter(model_revision="rev-2").update(
        signed_at=datetime.datetime(2026, 2, 18, 9, tzinfo=datetime.UTC)
    )

    summary = quality_summary(QualityFilters(date_from=D(2026, 1, 1), date_to=D(2026, 3, 31)))

    assert summary.period == "week"
    assert summary.periods[0] == D(2025, 12, 29) and summary.periods[-1] == D(2026, 3, 30)
    series = {s.label: s.points for s in summary.over_time}
    assert [(p.period, p.count, p.accepted_share) for p in series["tiny @ rev-1"]] == [
        (D(2026, 1, 5), 2, 1.0)
    ]
    assert [(p.period, p.count, p.accepted_share) for p in series["tiny @ rev-2"]] == [
        (D(2026, 2, 16), 1, 0.0)
    ]


def test_the_period_follows_the_date_range():
    assert period_for(D(2026, 3, 1), D(2026, 3, 31)) == "day"
    assert period_for(D(2026, 3, 1), D(2026, 4, 1)) == "week"
    assert period_for(D(2025, 1, 1), D(2025, 12, 31)) == "week"
    assert period_for(D(2024, 1, 1), D(2025, 12, 31)) == "month"
    assert period_starts(D(2026, 3, 30), D(2026, 4, 2), "day") == [D(2026, 3, d) for d in (30, 31)] + [
        D(2026, 4, 1),
        D(2026, 4, 2),
    ]
    assert period_starts(D(2026, 3, 4), D(2026, 3, 17), "week") == [
        D(2026, 3, 2),
        D(2026, 3, 9),
        D(2026, 3, 16),
    ]
    assert period_starts(D(2025, 11, 20), D(2026, 2, 1), "month") == [
        D(2025, 11, 1),
        D(2025, 12, 1),
        D(2026, 1, 1),
        D(2026, 2, 1),
    ]


def test_durations_read_as_people_say_them():
    assert duration_text(42.4) == "42 s"
    assert duration_text(12 * 60 + 5) == "12 min"
    assert duration_text(3 * 3600 + 20 * 60) == "3 h 20 min"
    assert duration_text(2 * 86400 + 4 * 3600 + 59) == "2 d 4 h"


def test_a_period_without_reports_breaks_the_line():
    from medportal.quality.chart import share_chart
    from medportal.quality.selectors import GroupStats, TimeSeries

    def point(day: int, share: float) -> GroupStats:
        return GroupStats("m", 1, 0, 0, 1, 1, share, 60, period=D(2026, 3, day))

    periods = [D(2026, 3, d) for d in (1, 2, 3, 4)]
    chart = share_chart(
        id="c",
        title="t",
        periods=periods,
        period="day",
        series=[TimeSeries("m", [point(1, 0.0), point(2, 1.0), point(4, 0.5)])],
        value=lambda s: s.accepted_share,
    )

    (line,) = chart.lines
    assert [word[0] for word in line.path.split() if word[0] in "ML"] == ["M", "L", "M"], line.path
    assert [p.y for p in line.points] == [chart.bottom, chart.top, (chart.top + chart.bottom) / 2]
    assert [p.x for p in line.points] == [
        chart.left,
        round(chart.left + (chart.right - chart.left) / 3, 1),
        chart.right,
    ]
    assert line.points[2].text == "m, day 2026-03-04: 50% (1 report)"
