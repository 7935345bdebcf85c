"""The one way to audit a critical result or a follow-up: its report's patient and study identify it."""

from __future__ import annotations

from typing import Any

from medportal.audit.models import Action, EventType, Outcome
from medportal.imaging.auditing import study_audit


def critical_audit(
    critical,
    description: str,
    *,
    action: Action,
    request=None,
    user: Any = None,
    username: str = "",
    outcome: Outcome = Outcome.SUCCESS,
    detail: dict | None = None,
) -> None:
    study_audit(
        critical.report.study,
        description,
        event_type=EventType.PATIENT_RECORD,
        action=action,
        request=request,
        user=user,
        username=username,
        outcome=outcome,
        object_type="critical_result",
        object_id=critical.pk,
        detail=detail,
    )


def followup_audit(
    follow_up,
    description: str,
    *,
    action: Action,
    request=None,
    user: Any = None,
    detail: dict | None = None,
) -> None:
    study_audit(
        follow_up.report.study,
        description,
        event_type=EventType.PATIENT_RECORD,
        action=action,
        request=request,
        user=user,
        object_type="follow_up",
        object_id=follow_up.pk,
        detail=detail,
    )
