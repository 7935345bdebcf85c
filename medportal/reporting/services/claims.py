"""The worklist: who reads which study (claim, release, assign, next study)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from medportal.access.roles import CAN_ASSIGN_STUDIES, CAN_CLAIM_STUDIES, has_role
from medportal.accounts.names import display_name
from medportal.audit.models import Action, Outcome
from medportal.reporting import lifecycle
from medportal.reporting.auditing import report_audit
from medportal.reporting.lifecycle import OPEN, ReportError, transition
from medportal.reporting.models import Report


class ReportClaimed(ReportError):
    """Another radiologist claimed the study first."""

    def __init__(self, message: str, report: Report):
        super().__init__(message)
        self.report = report


def _open_unclaimed():
    # The same condition as the partial index report_open_unclaimed, so "next study" uses it.
    return Report.objects.filter(assigned_to__isnull=True, status__in=sorted(OPEN))


def _require_claimant(user) -> None:
    if not has_role(user, *CAN_CLAIM_STUDIES):
        raise ReportError("Only a radiologist can claim a study.")


def report_claim(*, report: Report, user, request=None) -> Report:
    """Claim an unclaimed study for ``user``.

    A conditional UPDATE: of two radiologists claiming at once exactly one changes the
    row; the other gets ReportClaimed naming who has it. Claiming one's own study is a no-op.
    """
    _require_claimant(user)
    with transaction.atomic():
        won = (
            _open_unclaimed()
            .filter(pk=report.pk)
            .update(assigned_to=user, assigned_at=timezone.now(), status=lifecycle.target("claim"))
        )
        current = Report.objects.select_related("study__patient", "assigned_to").get(pk=report.pk)
        if won:
            report_audit(current, "Study claimed", action=Action.UPDATE, request=request, user=user)
            return current
    transition(current.status, "claim")
    if current.assigned_to_id == user.pk:
        return current
    holder = display_name(current.assigned_to)
    report_audit(
        current,
        "Claim refused: already claimed",
        action=Action.UPDATE,
        request=request,
        user=user,
        outcome=Outcome.MINOR_FAILURE,
        detail={"claimed_by": current.assigned_to.get_username()},
    )
    raise ReportClaimed(f"{holder} claimed this study first; it is on their list now.", current)


def report_release(*, report: Report, user, request=None) -> Report:
    """Give back one's own claim; the study is unclaimed again."""
    with transaction.atomic():
        released = Report.objects.filter(
            pk=report.pk, assigned_to=user, status__in=lifecycle.sources("release")
        ).update(assigned_to=None, assigned_at=None, status=lifecycle.target("release"))
        current = Report.objects.select_related("study__patient", "assigned_to").get(pk=report.pk)
        if released:
            report_audit(current, "Claim released", action=Action.UPDATE, request=request, user=user)
            return current
    transition(current.status, "release")
    if current.assigned_to is None:
        raise ReportError("This study is not claimed by anyone.")
    raise ReportError(
        f"{display_name(current.assigned_to)} claimed this study; only they or an admin can release it."
    )


def report_assign(*, report: Report, assignee, user, request=None) -> Report:
    """An admin gives a study to a radiologist (``assignee``), or unassigns it (``None``)."""
    if not has_role(user, *CAN_ASSIGN_STUDIES):
        raise ReportError("Only an admin can assign studies.")
    if assignee is not None and not has_role(assignee, *CAN_CLAIM_STUDIES):
        raise ReportError(f"{display_name(assignee)} is not a radiologist.")
    with transaction.atomic():
        current = Report.objects.select_for_update().select_related("study__patient").get(pk=report.pk)
        transition(current.status, "assign")
        previous = current.assigned_to.get_username() if current.assigned_to_id else None
        Report.objects.filter(pk=current.pk).update(
            assigned_to=assignee,
            assigned_at=timezone.now() if assignee else None,
            status=lifecycle.target("assign" if assignee else "release"),
        )
        current = Report.objects.select_related("study__patient", "assigned_to").get(pk=report.pk)
        report_audit(
            current,
            "Study assigned" if assignee else "Study unassigned",
            action=Action.UPDATE,
            request=request,
            user=user,
            detail={"from": previous, "to": assignee.get_username() if assignee else None},
        )
    return current


def worklist_next(*, user, request=None) -> Report | None:
    """Claim the next unclaimed, unsigned study: STAT, then urgent, then routine; oldest first.

    None when nothing is waiting. Another radiologist may take the candidate between
    the read and the conditional UPDATE; then the next candidate is tried.
    """
    _require_claimant(user)
    for _ in range(20):
        candidate = (
            _open_unclaimed()
            .order_by("study__priority", "study__received_at", "study_id")
            .values_list("pk", flat=True)
            .first()
        )
        if candidate is None:
            return None
        with transaction.atomic():
            claimed = (
                _open_unclaimed()
                .filter(pk=candidate)
                .update(assigned_to=user, assigned_at=timezone.now(), status=lifecycle.target("claim"))
            )
            if claimed:
                report = Report.objects.select_related("study__patient", "assigned_to").get(pk=candidate)
                report_audit(
                    report, "Study claimed (next study)", action=Action.UPDATE, request=request, user=user
                )
                return report
    raise ReportError("Other radiologists claimed every study offered; try again.")
