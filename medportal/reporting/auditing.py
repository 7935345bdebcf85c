"""The one way to audit a report: an access to it, a change of it, or a refusal."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from medportal.audit.models import Action, EventType, Outcome
from medportal.imaging.auditing import study_audit
from medportal.reporting.models import Report
from medportal.reporting.signals import report_changed


def report_audit(
    report: Report,
    description: str,
    *,
    action: Action,
    request: HttpRequest | None = None,
    user: Any = None,
    outcome: Outcome = Outcome.SUCCESS,
    detail: dict | None = None,
    event_type: EventType = EventType.PATIENT_RECORD,
) -> None:
    """Record an access to (or a refused action on) a report, with its patient and study.

    A successful change is also announced (``report_changed``: open worklists refresh); every
    change to a report is audited, so this is the one place that knows of them all.
    """
    study_audit(
        report.study,
        description,
        event_type=event_type,
        action=action,
        request=request,
        user=user,
        outcome=outcome,
        object_type="report",
        object_id=report.pk,
        detail=detail,
    )
    if action != Action.READ and outcome == Outcome.SUCCESS:
        report_changed.send(sender=Report, report_id=report.pk)
