"""Measuring a signed report against its AI draft. One function writes the measure."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from rapidfuzz.distance import Levenshtein

from medportal.quality.models import DraftOutcome
from medportal.reporting.lifecycle import FINAL
from medportal.reporting.models import Report, ReportVersion


class QualityError(Exception):
    """A report that cannot be measured (it is not signed)."""


def normalised_text(findings: str, impression: str) -> str:
    """Findings and Impression with each run of whitespace made one space, ends trimmed.

    The sections stay apart (a newline between them), so moving a sentence from Findings
    to Impression counts as a change; re-wrapping lines or trailing spaces do not.
    """
    return "\n".join(" ".join(section.split()) for section in (findings, impression))


@dataclass(frozen=True)
class TextDistance:
    distance: int
    similarity: float  # 0..1; 1 when both texts are the same (or both empty)
    unchanged: bool


def text_distance(draft: str, signed: str) -> TextDistance:
    """Levenshtein distance in characters between two normalised texts."""
    distance = Levenshtein.distance(draft, signed)
    return TextDistance(
        distance=distance,
        similarity=Levenshtein.normalized_similarity(draft, signed),
        unchanged=distance == 0,
    )


def outcome_record(*, report_id: int) -> DraftOutcome | None:
    """Write (or write again, with the same values) the outcome of a signed report.

    None when the report had no AI draft (written by hand). Comparing with the last AI
    draft: a redraft replaces what the radiologist started from.
    """
    report = Report.objects.select_related("study").get(pk=report_id)
    if report.status not in FINAL or report.signed_at is None or report.signed_by_id is None:
        raise QualityError(f"Report {report_id} is not signed; only signed reports are measured.")
    draft = report.versions.filter(source=ReportVersion.AI).order_by("-number").first()
    if draft is None:
        return None
    draft_text = normalised_text(draft.findings, draft.impression)
    signed_text = normalised_text(report.findings, report.impression)
    measured = text_distance(draft_text, signed_text)
    outcome, _ = DraftOutcome.objects.update_or_create(
        report=report,
        defaults={
            "model_id": report.model_id or "unknown",
            "model_revision": report.model_revision,
            "modality": report.study.modality,
            "radiologist_id": report.signed_by_id,
            "signed_at": report.signed_at,
            # The version's time, not Report.draft_finished_at: a later redraft that failed
            # overwrites that field, while the text compared is still this version's.
            "draft_finished_at": draft.created_at,
            "seconds_to_sign": max(0.0, (report.signed_at - draft.created_at).total_seconds()),
            "draft_version": draft.number,
            "signed_version": report.version,
            "draft_chars": len(draft_text),
            "signed_chars": len(signed_text),
            "edit_distance": measured.distance,
            "similarity": measured.similarity,
            "accepted_unchanged": measured.unchanged,
        },
    )
    return outcome


@dataclass(frozen=True)
class BackfillResult:
    recorded: int
    without_draft: int


def outcomes_backfill(*, again: bool = False) -> BackfillResult:
    """Measure the signed reports that have no outcome yet (``again``: all signed reports)."""
    reports = Report.objects.filter(status__in=FINAL, signed_at__isnull=False)
    if not again:
        reports = reports.filter(draft_outcome__isnull=True)
    recorded = without_draft = 0
    for report_id in reports.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=500):
        with transaction.atomic():
            outcome = outcome_record(report_id=report_id)
        if outcome is None:
            without_draft += 1
        else:
            recorded += 1
    return BackfillResult(recorded=recorded, without_draft=without_draft)
