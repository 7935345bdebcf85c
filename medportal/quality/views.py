"""The AI quality page for admins, and its figures as CSV. Both are audited."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from medportal.access.guards import role_required
from medportal.access.roles import CAN_VIEW_QUALITY
from medportal.audit.models import Action, EventType
from medportal.audit.services import audit_record
from medportal.csv_export import csv_line
from medportal.quality.chart import share_chart
from medportal.quality.forms import QualityFilterForm
from medportal.quality.selectors import QualitySummary, quality_summary

CSV_COLUMNS = [
    "grouping", "group", "period_start", "reports", "mean_edit_distance", "median_edit_distance",
    "mean_similarity", "median_similarity", "accepted_unchanged_share", "median_seconds_to_sign",
]  # fmt: skip


def _charts(summary: QualitySummary) -> list:
    if not summary.over_time:
        return []
    common = {"periods": summary.periods, "period": summary.period, "series": summary.over_time}
    return [
        share_chart(
            id="chart-accepted",
            title=f"Drafts signed unchanged, per {summary.period}",
            value=lambda s: s.accepted_share,
            **common,
        ),
        share_chart(
            id="chart-similarity",
            title=f"Median similarity of the signed text to the draft, per {summary.period}",
            value=lambda s: s.median_similarity,
            percent=False,
            **common,
        ),
    ]


@role_required(*CAN_VIEW_QUALITY)
def quality_page(request: HttpRequest) -> HttpResponse:
    form = QualityFilterForm(request.GET or None)
    filters = form.filters()
    audit_record(
        event_type=EventType.QUERY,
        action=Action.READ,
        description="AI quality viewed",
        request=request,
        detail=filters.as_detail(),
    )
    summary = quality_summary(filters)
    context = {
        "form": form,
        "summary": summary,
        "charts": _charts(summary),
        "groups": [
            ("model", "Per model version", summary.by_model),
            ("modality", "Per modality", summary.by_modality),
            ("radiologist", "Per radiologist", summary.by_radiologist),
        ],
        "query": request.GET.urlencode(),
    }
    template = "quality/quality.html#results" if request.htmx else "quality/quality.html"
    return render(request, template, context)


@role_required(*CAN_VIEW_QUALITY)
def quality_export_csv(request: HttpRequest) -> HttpResponse:
    """The page's tables as one CSV (a "grouping" column says which table a row is from)."""
    filters = QualityFilterForm(request.GET or None).filters()
    audit_record(
        event_type=EventType.EXPORT,
        action=Action.READ,
        description="AI quality exported (CSV)",
        request=request,
        detail=filters.as_detail(),
    )
    summary = quality_summary(filters)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="medportal-ai-quality.csv"'
    response.write(csv_line(CSV_COLUMNS))
    tables = [
        ("all", [summary.overall] if summary.overall else []),
        ("model", summary.by_model),
        ("modality", summary.by_modality),
        ("radiologist", summary.by_radiologist),
        (summary.period, summary.over_time_rows),
    ]
    for grouping, rows in tables:
        for s in rows:
            response.write(
                csv_line(
                    [
                        grouping,
                        s.label,
                        s.period.isoformat() if s.period else "",
                        s.count,
                        f"{s.mean_distance:.2f}",
                        f"{s.median_distance:g}",
                        f"{s.mean_similarity:.4f}",
                        f"{s.median_similarity:.4f}",
                        f"{s.accepted_share:.4f}",
                        f"{s.median_seconds_to_sign:.0f}",
                    ]
                )
            )
    return response
