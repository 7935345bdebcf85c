"""Every change to a report goes through these functions (web, API and worker alike)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from celery import current_app
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from medportal.accounts.roles import Role, has_role
from medportal.accounts.second_factor import totp_device, totp_verify
from medportal.audit.models import Action, EventType, Outcome
from medportal.audit.services import audit_record
from medportal.celery import DRAFT_TASK, draft_queue
from medportal.imaging.models import Study
from medportal.reporting.models import Report, ReportStatus, ReportVersion
from medportal.reporting.signals import report_changed


class ReportError(Exception):
    """A report action that is not allowed in the report's current state."""


class ReportConflict(ReportError):
    """Someone else saved the report first."""

    def __init__(self, message: str, report: Report):
        super().__init__(message)
        self.report = report


class ReauthenticationFailed(ReportError):
    """The password given to confirm a sign-off was wrong."""


@dataclass
class DraftProvenance:
    model_id: str
    model_revision: str
    prompt: str
    generation_params: dict
    preprocessing: dict = field(default_factory=dict)
    time_to_first_token_ms: float | None = None
    tokens_per_second: float | None = None
    generated_tokens: int | None = None


_IMPRESSION = re.compile(r"^\W*impression\W*:?\s*", re.IGNORECASE | re.MULTILINE)
_FINDINGS = re.compile(r"^\W*findings\W*:?\s*", re.IGNORECASE)


def split_sections(text: str) -> tuple[str, str]:
    """Findings and Impression of a drafted text; all of it is Findings without a heading."""
    match = _IMPRESSION.search(text)
    findings, impression = (text[: match.start()], text[match.end() :]) if match else (text, "")
    return _FINDINGS.sub("", findings.strip(), count=1).strip(), impression.strip()


def report_audit(
    report: Report,
    description: str,
    *,
    action: Action,
    request=None,
    user=None,
    outcome: Outcome = Outcome.SUCCESS,
    detail: dict | None = None,
) -> None:
    """Record an access to (or a refused action on) a report, with its patient and study."""
    study = report.study
    audit_record(
        event_type=EventType.PATIENT_RECORD,
        action=action,
        description=description,
        outcome=outcome,
        request=request,
        user=user,
        **study.audit_identifiers(),
        object_type="report",
        object_id=report.pk,
        detail=detail,
    )


def _audit_report(report: Report, description: str, **kwargs) -> None:
    report_audit(report, description, **kwargs)
    # Every change to a report is audited here, so this is the one place to announce it
    # (open worklists refresh; see medportal.streaming.apps).
    report_changed.send(sender=Report, report_id=report.pk)


def report_for_study(*, study: Study) -> Report:
    report, _ = Report.objects.get_or_create(study=study)
    return report


def draft_request(*, report: Report, user, request=None) -> Report:
    """Queue a new AI draft (a first draft, a retry, or a redraft). Sent to a worker after commit."""
    with transaction.atomic():
        locked = Report.objects.select_for_update().select_related("study__patient").get(pk=report.pk)
        if locked.status == ReportStatus.SIGNED:
            raise ReportError("This report is signed; it cannot be redrafted. Add an addendum instead.")
        if locked.status in (ReportStatus.QUEUED, ReportStatus.DRAFTING):
            raise ReportError("A draft is already in progress for this report.")
        queue = draft_queue()
        Report.objects.filter(pk=locked.pk).update(
            status=ReportStatus.QUEUED,
            draft_queue=queue,
            attempt=F("attempt") + 1,
            draft_claim=0,
            draft_text="",
            failure_reason="",
            draft_requested_at=timezone.now(),
            draft_started_at=None,
            draft_finished_at=None,
            time_to_first_token_ms=None,
            tokens_per_second=None,
            generated_tokens=None,
        )
        locked.refresh_from_db()
        _audit_report(locked, "AI draft requested", action=Action.EXECUTE, request=request, user=user)
        attempt = locked.attempt
        transaction.on_commit(
            lambda: current_app.send_task(DRAFT_TASK, args=[locked.pk, attempt], queue=queue)
        )
    return locked


def study_open_report(*, study: Study, user, auto_draft: bool, request=None) -> Report:
    """Create the report of a newly received study, queueing a draft when asked."""
    report = report_for_study(study=study)
    if auto_draft and report.attempt == 0:
        report = draft_request(report=report, user=user, request=request)
    return report


# -- the worker's side ----------------------------------------------------------------


# How often a draft may be claimed again after its worker died before the report fails.
MAX_DRAFT_CLAIMS = 3


@dataclass(frozen=True)
class DraftClaim:
    """One worker's hold on one draft attempt; only its holder may write the draft."""

    report_id: int
    attempt: int
    number: int

    @property
    def stream(self) -> str:
        """Names this run of the draft in stream messages: its text starts again from nothing."""
        return f"{self.attempt}.{self.number}"


def _claimed(claim: DraftClaim):
    return Report.objects.filter(
        pk=claim.report_id, attempt=claim.attempt, draft_claim=claim.number, status=ReportStatus.DRAFTING
    )


def draft_start(*, report_id: int, attempt: int) -> DraftClaim | None:
    """Claim the draft of this attempt (a conditional UPDATE: one winner at a time).

    A queued draft is claimed by its task. A draft still "drafting" is claimed again
    when the task is redelivered because its worker died (acks_late and
    reject_on_worker_lost); the earlier holder can no longer write. After
    MAX_DRAFT_CLAIMS claims the report fails visibly instead of looping.
    """
    updated = Report.objects.filter(
        pk=report_id,
        attempt=attempt,
        status__in=[ReportStatus.QUEUED, ReportStatus.DRAFTING],
        draft_claim__lt=MAX_DRAFT_CLAIMS,
    ).update(
        status=ReportStatus.DRAFTING,
        draft_claim=F("draft_claim") + 1,
        draft_text="",
        draft_started_at=timezone.now(),
    )
    current = Report.objects.filter(pk=report_id, attempt=attempt).values("status", "draft_claim").first()
    if updated and current:
        return DraftClaim(report_id, attempt, current["draft_claim"])
    if current and current["status"] == ReportStatus.DRAFTING:
        draft_fail(
            report_id=report_id,
            attempt=attempt,
            reason=(
                f"The worker stopped {MAX_DRAFT_CLAIMS} times while drafting this report; "
                "it was not tried again. Check the worker's log, then retry."
            ),
        )
    return None


def draft_progress(*, claim: DraftClaim, text: str) -> bool:
    """Save the text so far; False when the claim was lost (redrafted, reclaimed)."""
    return bool(_claimed(claim).update(draft_text=text))


def draft_finish(*, claim: DraftClaim, text: str, provenance: DraftProvenance) -> bool:
    findings, impression = split_sections(text)
    with transaction.atomic():
        updated = _claimed(claim).update(
            status=ReportStatus.DRAFTED,
            draft_text=text,
            findings=findings,
            impression=impression,
            version=F("version") + 1,
            draft_finished_at=timezone.now(),
            model_id=provenance.model_id,
            model_revision=provenance.model_revision,
            prompt=provenance.prompt,
            generation_params=provenance.generation_params,
            preprocessing=provenance.preprocessing,
            time_to_first_token_ms=provenance.time_to_first_token_ms,
            tokens_per_second=provenance.tokens_per_second,
            generated_tokens=provenance.generated_tokens,
        )
        if not updated:
            return False
        report = Report.objects.select_related("study__patient").get(pk=claim.report_id)
        ReportVersion.objects.create(
            report=report,
            number=report.version,
            source=ReportVersion.AI,
            findings=findings,
            impression=impression,
        )
        _audit_report(
            report,
            "AI draft written",
            action=Action.CREATE,
            detail={"model_id": provenance.model_id, "attempt": claim.attempt, "claim": claim.number},
        )
    return True


def draft_fail(*, report_id: int, attempt: int, reason: str, claim: DraftClaim | None = None) -> bool:
    """Mark the attempt failed, with the reason shown to the user (only the claim holder, when given)."""
    rows = (
        _claimed(claim)
        if claim
        else Report.objects.filter(
            pk=report_id, attempt=attempt, status__in=[ReportStatus.QUEUED, ReportStatus.DRAFTING]
        )
    )
    updated = rows.update(
        status=ReportStatus.FAILED, failure_reason=reason[:2000], draft_finished_at=timezone.now()
    )
    if updated:
        report = Report.objects.select_related("study__patient").get(pk=report_id)
        _audit_report(
            report,
            "AI draft failed",
            action=Action.CREATE,
            outcome=Outcome.SERIOUS_FAILURE,
            detail={"reason": reason[:500], "attempt": attempt},
        )
    return bool(updated)


# -- the radiologist's side -----------------------------------------------------------


def report_save(
    *, report: Report, user, findings: str, impression: str, expected_version: int, request=None
) -> Report:
    """Save an edit as a new version. Fails with ReportConflict when someone saved first."""
    with transaction.atomic():
        current = Report.objects.select_for_update().select_related("study__patient").get(pk=report.pk)
        if current.status == ReportStatus.SIGNED:
            raise ReportError("This report is signed and cannot be changed.")
        if current.status not in (ReportStatus.RECEIVED, ReportStatus.DRAFTED, ReportStatus.FAILED):
            raise ReportError("The AI draft is still being written; wait for it to finish.")
        if current.version != expected_version:
            raise ReportConflict("Someone else saved this report first; their text is shown.", current)
        Report.objects.filter(pk=current.pk).update(
            findings=findings,
            impression=impression,
            version=F("version") + 1,
            status=ReportStatus.DRAFTED,
            failure_reason="",
        )
        current.refresh_from_db()
        ReportVersion.objects.create(
            report=current,
            number=current.version,
            source=ReportVersion.EDIT,
            findings=findings,
            impression=impression,
            author=user,
        )
        _audit_report(
            current,
            "Report edited",
            action=Action.UPDATE,
            request=request,
            user=user,
            detail={"version": current.version},
        )
    return current


def report_sign(
    *,
    report: Report,
    user,
    password: str,
    otp_code: str = "",
    expected_version: int | None = None,
    request=None,
) -> Report:
    """Sign after re-authentication: the password, and a TOTP code when the user has enrolled one.
    Exactly one of two concurrent signers succeeds."""
    if not user.is_active or not user.check_password(password):
        _audit_report(
            report,
            "Sign-off refused: wrong password",
            action=Action.UPDATE,
            request=request,
            user=user,
            outcome=Outcome.MINOR_FAILURE,
        )
        raise ReauthenticationFailed("The password is not correct; the report was not signed.")
    if totp_device(user) is not None and not totp_verify(
        user=user, code=otp_code, request=request, purpose="sign-off"
    ):
        raise ReauthenticationFailed(
            "The code from your authenticator app is missing or wrong; the report was not signed."
        )
    with transaction.atomic():
        current = Report.objects.select_for_update().select_related("study__patient").get(pk=report.pk)
        if current.status == ReportStatus.SIGNED:
            raise ReportError("This report is already signed.")
        if current.status != ReportStatus.DRAFTED:
            raise ReportError("Only a drafted report can be signed.")
        if expected_version is not None and current.version != expected_version:
            raise ReportConflict(
                "The report changed since you opened it; read the newer text, then sign.", current
            )
        if not (current.findings.strip() or current.impression.strip()):
            raise ReportError("An empty report cannot be signed.")
        Report.objects.filter(pk=current.pk, status=ReportStatus.DRAFTED).update(
            status=ReportStatus.SIGNED, signed_by=user, signed_at=timezone.now()
        )
        current.refresh_from_db()
        _audit_report(
            current,
            "Report signed",
            action=Action.UPDATE,
            request=request,
            user=user,
            detail={"version": current.version},
        )
    return current


# -- the worklist: who reads which study ------------------------------------------------


class ReportClaimed(ReportError):
    """Another radiologist claimed the study first."""

    def __init__(self, message: str, report: Report):
        super().__init__(message)
        self.report = report


def _display_name(user) -> str:
    return user.get_full_name() or user.get_username()


def _open_unclaimed():
    # Signed reports are immutable (a trigger refuses any UPDATE), so they are never claimed.
    return Report.objects.filter(assigned_to__isnull=True).exclude(status=ReportStatus.SIGNED)


def _require_radiologist(user) -> None:
    if not has_role(user, Role.RADIOLOGIST):
        raise ReportError("Only a radiologist can claim a study.")


def report_claim(*, report: Report, user, request=None) -> Report:
    """Claim an unclaimed study for ``user``.

    A conditional UPDATE: of two radiologists claiming at once exactly one changes the
    row; the other gets ReportClaimed naming who has it. Claiming one's own study is a no-op.
    """
    _require_radiologist(user)
    with transaction.atomic():
        won = _open_unclaimed().filter(pk=report.pk).update(assigned_to=user, assigned_at=timezone.now())
        current = Report.objects.select_related("study__patient", "assigned_to").get(pk=report.pk)
        if won:
            _audit_report(current, "Study claimed", action=Action.UPDATE, request=request, user=user)
            return current
    if current.status == ReportStatus.SIGNED:
        raise ReportError("This study's report is signed; there is nothing to claim.")
    if current.assigned_to_id == user.pk:
        return current
    holder = _display_name(current.assigned_to)
    _audit_report(
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
        released = (
            Report.objects.filter(pk=report.pk, assigned_to=user)
            .exclude(status=ReportStatus.SIGNED)
            .update(assigned_to=None, assigned_at=None)
        )
        current = Report.objects.select_related("study__patient", "assigned_to").get(pk=report.pk)
        if released:
            _audit_report(current, "Claim released", action=Action.UPDATE, request=request, user=user)
            return current
    if current.status == ReportStatus.SIGNED:
        raise ReportError("This study's report is signed; who read it stays on record.")
    if current.assigned_to is None:
        raise ReportError("This study is not claimed by anyone.")
    raise ReportError(
        f"{_display_name(current.assigned_to)} claimed this study; only they or an admin can release it."
    )


def report_assign(*, report: Report, assignee, user, request=None) -> Report:
    """An admin gives a study to a radiologist (``assignee``), or unassigns it (``None``)."""
    if not has_role(user, Role.ADMIN):
        raise ReportError("Only an admin can assign studies.")
    if assignee is not None and not has_role(assignee, Role.RADIOLOGIST):
        raise ReportError(f"{_display_name(assignee)} is not a radiologist.")
    with transaction.atomic():
        current = Report.objects.select_for_update().select_related("study__patient").get(pk=report.pk)
        if current.status == ReportStatus.SIGNED:
            raise ReportError("This study's report is signed; it cannot be reassigned.")
        previous = current.assigned_to.get_username() if current.assigned_to_id else None
        Report.objects.filter(pk=current.pk).update(
            assigned_to=assignee, assigned_at=timezone.now() if assignee else None
        )
        current = Report.objects.select_related("study__patient", "assigned_to").get(pk=report.pk)
        _audit_report(
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
    _require_radiologist(user)
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
            if _open_unclaimed().filter(pk=candidate).update(assigned_to=user, assigned_at=timezone.now()):
                report = Report.objects.select_related("study__patient", "assigned_to").get(pk=candidate)
                _audit_report(
                    report, "Study claimed (next study)", action=Action.UPDATE, request=request, user=user
                )
                return report
    raise ReportError("Other radiologists claimed every study offered; try again.")
