"""Reads of reports for views, the API and the stream."""

from __future__ import annotations

from medportal.reporting.models import Report


def report_stream_path(report_id: int) -> str:
    """The websocket path of a report's draft stream (routed in medportal.streaming.routing)."""
    return f"/ws/reports/{report_id}/"


def report_provenance(report: Report) -> dict:
    return {
        "model_id": report.model_id,
        "model_revision": report.model_revision,
        "prompt": report.prompt,
        "generation_params": report.generation_params,
        "preprocessing": report.preprocessing,
        "time_to_first_token_ms": report.time_to_first_token_ms,
        "tokens_per_second": report.tokens_per_second,
        "generated_tokens": report.generated_tokens,
    }


def report_snapshot(*, report_id: int) -> dict:
    """What a stream subscriber needs to (re)start: the database's text is the truth."""
    report = Report.objects.get(pk=report_id)
    return {
        "report_id": report.pk,
        "status": report.status,
        "status_display": report.get_status_display(),
        "attempt": report.attempt,
        "text": report.draft_text,
        "failure_reason": report.failure_reason,
        "version": report.version,
    }
