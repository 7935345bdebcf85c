"""The report's state machine, in one place.

received → queued → drafting → drafted → in review (claimed or edited) → signed → amended;
failed (with its reason) → queued again (retry); any report not yet signed may be cancelled.

Each action lists the states it may start from and the state it leads to. The services in
``medportal.reporting.services`` ask ``transition`` before they change a report, and use
``sources`` in their conditional UPDATEs so that a concurrent change cannot slip past the
check. An action from any other state raises ``IllegalTransition`` with a message a user
can act on.
"""

from __future__ import annotations

from django.db import models


class ReportStatus(models.TextChoices):
    RECEIVED = "received", "Awaiting draft"
    QUEUED = "queued", "Draft queued"
    DRAFTING = "drafting", "Drafting"
    DRAFTED = "drafted", "Drafted"
    IN_REVIEW = "in_review", "In review"
    FAILED = "failed", "Draft failed"
    SIGNED = "signed", "Signed"
    AMENDED = "amended", "Amended"
    CANCELLED = "cancelled", "Cancelled"


S = ReportStatus

# Signed (and amended) reports never change again, except that an addendum turns "signed"
# into "amended"; the database refuses anything else (migration 0006).
FINAL = frozenset({S.SIGNED, S.AMENDED})
# Reports still waiting for a radiologist's signature.
OPEN = frozenset(set(S) - FINAL - {S.CANCELLED})
_NOT_DRAFTING = OPEN - {S.QUEUED, S.DRAFTING}

# action -> {state it may start from: state it leads to}
TRANSITIONS: dict[str, dict[str, str]] = {
    "request_draft": dict.fromkeys(_NOT_DRAFTING, S.QUEUED),
    "start_draft": {S.QUEUED: S.DRAFTING, S.DRAFTING: S.DRAFTING},  # a redelivery claims again
    "finish_draft": {S.DRAFTING: S.DRAFTED},  # in review when claimed meanwhile: see finished_status
    "fail_draft": {S.QUEUED: S.FAILED, S.DRAFTING: S.FAILED},
    # The worker died (its lease ran out): the draft waits for a worker again.
    "requeue_draft": {S.DRAFTING: S.QUEUED},
    "edit": dict.fromkeys(_NOT_DRAFTING, S.IN_REVIEW),
    # Claiming a drafted report starts its review; a claim on a report still waiting for its
    # draft keeps the status until the draft is written.
    "claim": {**{s: s for s in OPEN}, S.DRAFTED: S.IN_REVIEW},
    "assign": {**{s: s for s in OPEN}, S.DRAFTED: S.IN_REVIEW},
    "release": {**{s: s for s in OPEN}, S.IN_REVIEW: S.DRAFTED},
    "sign": {S.DRAFTED: S.SIGNED, S.IN_REVIEW: S.SIGNED},
    "add_addendum": {S.SIGNED: S.AMENDED, S.AMENDED: S.AMENDED},
    "cancel": dict.fromkeys(OPEN, S.CANCELLED),
}

_VERBS = {
    "request_draft": "sent for an AI draft",
    "start_draft": "drafted",
    "finish_draft": "given a finished draft",
    "fail_draft": "marked failed",
    "requeue_draft": "sent to a worker again",
    "edit": "edited",
    "claim": "claimed",
    "assign": "assigned",
    "release": "released",
    "sign": "signed",
    "add_addendum": "given an addendum",
    "cancel": "cancelled",
}


class ReportError(Exception):
    """A report action that is not allowed in the report's current state."""


class IllegalTransition(ReportError):
    """The report's state machine has no such move."""

    def __init__(self, action: str, status: str):
        self.action, self.status = action, status
        super().__init__(_explain(action, status))


def _explain(action: str, status: str) -> str:
    verb = _VERBS[action]
    if status in FINAL:
        if action == "sign":
            return "This report is already signed."
        return f"This report is signed; it cannot be {verb}. Corrections are addenda."
    if status == S.CANCELLED:
        return f"This report was cancelled; it cannot be {verb}."
    if status in (S.QUEUED, S.DRAFTING) and action in ("edit", "request_draft", "sign"):
        if action == "request_draft":
            return "A draft is already in progress for this report."
        return "The AI draft is still being written; wait for it to finish."
    if action == "add_addendum":
        return "Only a signed report takes addenda; edit the report itself until it is signed."
    if action == "sign":
        return "There is nothing to sign yet: the report has no text."
    return f"A report that is {S(status).label.lower()} cannot be {verb}."


def transition(status: str, action: str) -> str:
    """The state ``action`` leads to from ``status``; IllegalTransition when it may not."""
    targets = TRANSITIONS[action]
    if status not in targets:
        raise IllegalTransition(action, status)
    return targets[status]


def sources(action: str) -> list[str]:
    """The states ``action`` may start from, for a conditional UPDATE's filter."""
    return list(TRANSITIONS[action])


def target(action: str) -> models.Case:
    """The new status as an SQL expression, for an UPDATE over rows filtered by ``sources``."""
    moves = [models.When(status=source, then=models.Value(to)) for source, to in TRANSITIONS[action].items()]
    return models.Case(*moves, default=models.F("status"))


def finished_status() -> models.Case:
    """The status a finished draft gets: in review when a radiologist already claimed it."""
    return models.Case(
        models.When(assigned_to__isnull=False, then=models.Value(S.IN_REVIEW)),
        default=models.Value(S.DRAFTED),
    )
