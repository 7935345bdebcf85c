"""Reading the audit trail for auditors: filters, and who accessed a patient."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Count, Max, Min, QuerySet

from medportal.audit.models import AuditEvent, EventType, Outcome


@dataclass(frozen=True)
class AuditFilters:
    username: str = ""
    patient_id: str = ""
    study_uid: str = ""
    event_type: str = ""
    outcome: int | None = None
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None

    def as_detail(self) -> dict:
        """The query as it is stored in the audit event that records it."""
        return {k: str(v) for k, v in self.__dict__.items() if v not in ("", None)}


def audit_events(filters: AuditFilters) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.order_by("-id")
    for field in ("username", "patient_id", "study_uid", "event_type"):
        value = getattr(filters, field)
        if value:
            events = events.filter(**{field: value})
    if filters.outcome is not None:
        events = events.filter(outcome=filters.outcome)
    if filters.date_from:
        events = events.filter(occurred_at__date__gte=filters.date_from)
    if filters.date_to:
        events = events.filter(occurred_at__date__lte=filters.date_to)
    return events


def patient_accessors(patient_id: str) -> list[dict]:
    """Everyone who touched a patient's data: how often, first and last time."""
    return list(
        AuditEvent.objects.filter(patient_id=patient_id)
        .values("username", "role")
        .annotate(events=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
        .order_by("-last")
    )


EVENT_CHOICES = EventType.choices
OUTCOME_CHOICES = Outcome.choices
