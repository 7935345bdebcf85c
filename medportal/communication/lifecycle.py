"""A critical result's states and the moves between them, in one table (as reports' lifecycle).

awaiting (marked, nobody told yet) → notified (told, or e-mailed a link) → acknowledged (the
clinician opened the link and confirmed, or the radiologist recorded a read-back). Telling
someone else again keeps it notified. Escalation is not a state: an unacknowledged result past
its time is flagged (``escalated_at``) and stays where it is until acknowledged.
"""

from __future__ import annotations

from django.db import models


class CriticalStatus(models.TextChoices):
    AWAITING = "awaiting", "Not yet communicated"
    NOTIFIED = "notified", "Communicated, not acknowledged"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"


C = CriticalStatus
UNACKNOWLEDGED = frozenset({C.AWAITING, C.NOTIFIED})

TRANSITIONS: dict[str, dict[str, str]] = {
    "notify": {C.AWAITING: C.NOTIFIED, C.NOTIFIED: C.NOTIFIED},
    "acknowledge": {C.NOTIFIED: C.ACKNOWLEDGED},
}

_REFUSALS = {
    (
        "acknowledge",
        C.AWAITING,
    ): "Nobody has been told of this critical result yet: record whom you told first.",
    ("acknowledge", C.ACKNOWLEDGED): "This critical result is already acknowledged.",
    ("notify", C.ACKNOWLEDGED): "This critical result is already acknowledged.",
}


class CommunicationError(Exception):
    """An action on a critical result or a follow-up that is not possible now; says why."""


def transition(status: str, action: str) -> str:
    """The state ``action`` leads to from ``status``; CommunicationError when it may not."""
    targets = TRANSITIONS[action]
    if status not in targets:
        raise CommunicationError(
            _REFUSALS.get((action, status), f"Not possible while {C(status).label.lower()}.")
        )
    return targets[status]


def sources(action: str) -> list[str]:
    """The states ``action`` may start from, for a conditional UPDATE's filter."""
    return list(TRANSITIONS[action])
