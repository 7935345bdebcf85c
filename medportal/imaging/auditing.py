"""The one way to audit an access to (or a change of) a study: its patient and study identify it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from medportal.audit.models import Action, EventType, Outcome
from medportal.audit.services import audit_record
from medportal.imaging.models import Study


def study_audit(
    study: Study,
    description: str,
    *,
    event_type: EventType,
    action: Action,
    request: HttpRequest | None = None,
    user: Any = None,
    username: str = "",
    outcome: Outcome = Outcome.SUCCESS,
    object_type: str = "study",
    object_id: str | int | None = None,
    detail: dict | None = None,
) -> None:
    """Record an event about ``study``; ``object_type``/``object_id`` name a part of it
    (an instance, a report, a message) when the event is about that part."""
    audit_record(
        event_type=event_type,
        action=action,
        description=description,
        outcome=outcome,
        request=request,
        user=user,
        username=username,
        **study.audit_identifiers(),
        object_type=object_type,
        object_id=study.pk if object_id is None else object_id,
        detail=detail,
    )
