"""Every change to a report goes through these functions (web, API and worker alike)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

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
from medportal.reporting import lifecycle
from medportal.reporting.lifecycle import OPEN, IllegalTransition, ReportError, transition
from medportal.reporting.models import Addendum, Report, ReportStatus, ReportTemplate, ReportVersion
from medportal.reporting.signals import report_changed, report_signed

__all__ = ["IllegalTransition", "ReportError"]  # and the functions below


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
    # The report template the prompt was built with (None: no template matched the study),
    # its name at the time, and the sections the prompt asked for, in order.
    template_id: int | None = None
    template_name: str = ""
    sections: tuple[str, ...] = ("Findings", "Impression")
    # A thinking model's trace: kept with the draft, never part of its text.
    thinking: str = ""
    # The Comparison the worker wrote itself, first in the text ("COMPARISON: ...").
    comparison: str = ""


@dataclass(frozen=True)
class Sections:
    technique: str = ""
    comparison: str = ""
    findings: str = ""
    impression: str = ""


_SECTION_NAMES = ("technique", "comparison", "findings", "impression")
# A heading starts a line and is followed by a colon or the end of the line: "IMPRESSION:",
# "**Findings:**", "Technique". "Impression of the heart ..." is a sentence, not a heading.
_HEADING = re.compile(
    r"^[^\w\n]*(?P<name>technique|comparison|findings?|impressions?)\b[^\w\n:]*(?::[^\w\n]*|$)",
    re.IGNORECASE | re.MULTILINE,
)


def split_sections(text: str, *, sections: tuple[str, ...] = ("Findings", "Impression")) -> Sections:
    """The sections of a drafted text, by their headings.

    Only the headings of ``sections`` split the text (Findings and Impression always; Technique and
    Comparison when the report's template has them); any other text stays where it is. Text before
    the first heading, and all of it without headings, is Findings.
    """
    wanted = {name.lower() for name in sections} | {"findings", "impression"}
    parts: dict[str, list[str]] = {name: [] for name in _SECTION_NAMES}
    current, start = "findings", 0
    for match in _HEADING.finditer(text):
        name = match["name"].lower()
        name = {"finding": "findings", "impressions": "impression"}.get(name, name)
        if name not in wanted:
            continue
        parts[current].append(text[start : match.start()])
        current, start = name, match.end()
    parts[current].append(text[start:])
    joined = {name: "\n\n".join(p.strip() for p in chunks if p.strip()) for name, chunks in parts.items()}
    return Sections(**joined)


def report_audit(
    report: Report,
    description: str,
    *,
    action: Action,
    request=None,
    user=None,
    outcome: Outcome = Outcome.SUCCESS,
    detail: dict | None = None,
    event_type: EventType = EventType.PATIENT_RECORD,
) -> None:
    """Record an access to (or a refused action on) a report, with its patient and study."""
    study = report.study
    audit_record(
        event_type=event_type,
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


def draft_request(*, report: Report, user, request=None, instruction: str = "") -> Report:
    """Queue a new AI draft (a first draft, a retry, or a redraft). Sent to a worker after commit.

    ``instruction`` is the radiologist's extra instruction for this draft ("compare with the
    prior", "be brief"); the worker adds it to the prompt.
    """
    with transaction.atomic():
        locked = Report.objects.select_for_update().select_related("study__patient").get(pk=report.pk)
        status = transition(locked.status, "request_draft")
        queue = draft_queue()
        Report.objects.filter(pk=locked.pk).update(
            status=status,
            draft_queue=queue,
            draft_instruction=instruction.strip()[:2000],
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
        attempt = locked.attempt
        # Registered first, so it runs first after commit: the worker starts before the open
        # worklists are told (the audit below registers that announcement).
        transaction.on_commit(
            lambda: current_app.send_task(DRAFT_TASK, args=[locked.pk, attempt], queue=queue)
        )
        _audit_report(
            locked,
            "AI draft requested",
            action=Action.EXECUTE,
            request=request,
            user=user,
            detail={"instruction": locked.draft_instruction} if locked.draft_instruction else None,
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
        pk=claim.report_id,
        attempt=claim.attempt,
        draft_claim=claim.number,
        status__in=lifecycle.sources("finish_draft"),
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
        status__in=lifecycle.sources("start_draft"),
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
    if provenance.comparison:
        body = text.removeprefix(f"COMPARISON: {provenance.comparison}\n\n")
        sections = replace(
            split_sections(body, sections=provenance.sections), comparison=provenance.comparison
        )
    else:
        sections = split_sections(text, sections=provenance.sections)
    # A template deleted while the draft was written: its name stays on the report.
    template_id = provenance.template_id
    if template_id is not None and not ReportTemplate.objects.filter(pk=template_id).exists():
        template_id = None
    with transaction.atomic():
        updated = _claimed(claim).update(
            status=lifecycle.finished_status(),
            draft_text=text,
            technique=sections.technique,
            comparison=sections.comparison,
            findings=sections.findings,
            impression=sections.impression,
            version=F("version") + 1,
            draft_finished_at=timezone.now(),
            model_id=provenance.model_id,
            model_revision=provenance.model_revision,
            prompt=provenance.prompt,
            template_id=template_id,
            template_name=provenance.template_name[:200],
            generation_params=provenance.generation_params,
            preprocessing=provenance.preprocessing,
            time_to_first_token_ms=provenance.time_to_first_token_ms,
            tokens_per_second=provenance.tokens_per_second,
            generated_tokens=provenance.generated_tokens,
            draft_thinking=provenance.thinking,
        )
        if not updated:
            return False
        report = Report.objects.select_related("study__patient").get(pk=claim.report_id)
        ReportVersion.objects.create(
            report=report,
            number=report.version,
            source=ReportVersion.AI,
            technique=sections.technique,
            comparison=sections.comparison,
            findings=sections.findings,
            impression=sections.impression,
        )
        _audit_report(
            report,
            "AI draft written",
            action=Action.CREATE,
            detail={
                "model_id": provenance.model_id,
                "attempt": claim.attempt,
                "claim": claim.number,
                **({"template": provenance.template_name} if provenance.template_name else {}),
            },
        )
    return True


def draft_fail(*, report_id: int, attempt: int, reason: str, claim: DraftClaim | None = None) -> bool:
    """Mark the attempt failed, with the reason shown to the user (only the claim holder, when given)."""
    rows = (
        _claimed(claim)
        if claim
        else Report.objects.filter(pk=report_id, attempt=attempt, status__in=lifecycle.sources("fail_draft"))
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
    *,
    report: Report,
    user,
    findings: str,
    impression: str,
    expected_version: int,
    technique: str | None = None,
    comparison: str | None = None,
    request=None,
) -> Report:
    """Save an edit as a new version; the report is then in review.

    Fails with ReportConflict when someone saved first. Technique and Comparison stay as
    they are when not given (their template has no such section).
    """
    with transaction.atomic():
        current = Report.objects.select_for_update().select_related("study__patient").get(pk=report.pk)
        status = transition(current.status, "edit")
        if current.version != expected_version:
            raise ReportConflict("Someone else saved this report first; their text is shown.", current)
        technique = current.technique if technique is None else technique
        comparison = current.comparison if comparison is None else comparison
        Report.objects.filter(pk=current.pk).update(
            technique=technique,
            comparison=comparison,
            findings=findings,
            impression=impression,
            version=F("version") + 1,
            status=status,
            failure_reason="",
        )
        current.refresh_from_db()
        ReportVersion.objects.create(
            report=current,
            number=current.version,
            source=ReportVersion.EDIT,
            technique=technique,
            comparison=comparison,
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
    _reauthenticate(report=report, user=user, password=password, otp_code=otp_code, request=request)
    with transaction.atomic():
        current = Report.objects.select_for_update().select_related("study__patient").get(pk=report.pk)
        status = transition(current.status, "sign")
        if expected_version is not None and current.version != expected_version:
            raise ReportConflict(
                "The report changed since you opened it; read the newer text, then sign.", current
            )
        if not (current.findings.strip() or current.impression.strip()):
            raise ReportError("An empty report cannot be signed.")
        Report.objects.filter(pk=current.pk, status__in=lifecycle.sources("sign")).update(
            status=status, signed_by=user, signed_at=timezone.now()
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
        transaction.on_commit(
            lambda: report_signed.send(sender=Report, report_id=current.pk, addendum_id=None)
        )
    return current


def _reauthenticate(*, report: Report, user, password: str, otp_code: str, request) -> None:
    """A signature needs the signer's password again, and their TOTP code when they enrolled one."""
    if not user.is_active or not user.check_password(password):
        _audit_report(
            report,
            "Sign-off refused: wrong password",
            action=Action.UPDATE,
            request=request,
            user=user,
            outcome=Outcome.MINOR_FAILURE,
        )
        raise ReauthenticationFailed("The password is not correct; nothing was signed.")
    if totp_device(user) is not None and not totp_verify(
        user=user, code=otp_code, request=request, purpose="sign-off"
    ):
        raise ReauthenticationFailed(
            "The code from your authenticator app is missing or wrong; nothing was signed."
        )


def addendum_sign(
    *, report: Report, user, text: str, password: str, otp_code: str = "", request=None
) -> Addendum:
    """Add a signed correction to a signed report (re-authenticated like a sign-off).

    The report's own text never changes; its addenda are numbered in the order signed.
    """
    text = text.strip()
    if not text:
        raise ReportError("An empty addendum cannot be signed.")
    if not has_role(user, Role.RADIOLOGIST):
        raise ReportError("Only a radiologist can sign an addendum.")
    _reauthenticate(report=report, user=user, password=password, otp_code=otp_code, request=request)
    with transaction.atomic():
        current = Report.objects.select_for_update().select_related("study__patient").get(pk=report.pk)
        status = transition(current.status, "add_addendum")
        addendum = Addendum.objects.create(
            report=current,
            number=current.addenda.count() + 1,
            text=text,
            signed_by=user,
            signed_at=timezone.now(),
        )
        if current.status != status:
            Report.objects.filter(pk=current.pk, status__in=lifecycle.sources("add_addendum")).update(
                status=status
            )
        _audit_report(
            current,
            "Addendum signed",
            action=Action.CREATE,
            request=request,
            user=user,
            detail={"addendum": addendum.number},
        )
        transaction.on_commit(
            lambda: report_signed.send(sender=Report, report_id=current.pk, addendum_id=addendum.pk)
        )
    return addendum


def report_cancel(*, report: Report, user, reason: str, request=None) -> Report:
    """Cancel an unsigned report (the order was withdrawn, the study was sent in error).

    A draft in progress stops writing: the worker only writes to a report that is drafting.
    """
    reason = reason.strip()
    if not reason:
        raise ReportError("Say why the report is cancelled.")
    if not has_role(user, Role.RADIOLOGIST, Role.ADMIN):
        raise ReportError("Only a radiologist or an admin can cancel a report.")
    with transaction.atomic():
        current = Report.objects.select_for_update().select_related("study__patient").get(pk=report.pk)
        status = transition(current.status, "cancel")
        Report.objects.filter(pk=current.pk).update(status=status, cancel_reason=reason[:2000])
        current.refresh_from_db()
        _audit_report(
            current,
            "Report cancelled",
            action=Action.UPDATE,
            request=request,
            user=user,
            detail={"reason": reason},
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
    # The same condition as the partial index report_open_unclaimed, so "next study" uses it.
    return Report.objects.filter(assigned_to__isnull=True, status__in=sorted(OPEN))


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
        won = (
            _open_unclaimed()
            .filter(pk=report.pk)
            .update(assigned_to=user, assigned_at=timezone.now(), status=lifecycle.target("claim"))
        )
        current = Report.objects.select_related("study__patient", "assigned_to").get(pk=report.pk)
        if won:
            _audit_report(current, "Study claimed", action=Action.UPDATE, request=request, user=user)
            return current
    transition(current.status, "claim")
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
        released = Report.objects.filter(
            pk=report.pk, assigned_to=user, status__in=lifecycle.sources("release")
        ).update(assigned_to=None, assigned_at=None, status=lifecycle.target("release"))
        current = Report.objects.select_related("study__patient", "assigned_to").get(pk=report.pk)
        if released:
            _audit_report(current, "Claim released", action=Action.UPDATE, request=request, user=user)
            return current
    transition(current.status, "release")
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
        transition(current.status, "assign")
        previous = current.assigned_to.get_username() if current.assigned_to_id else None
        Report.objects.filter(pk=current.pk).update(
            assigned_to=assignee,
            assigned_at=timezone.now() if assignee else None,
            status=lifecycle.target("assign" if assignee else "release"),
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
            claimed = (
                _open_unclaimed()
                .filter(pk=candidate)
                .update(assigned_to=user, assigned_at=timezone.now(), status=lifecycle.target("claim"))
            )
            if claimed:
                report = Report.objects.select_related("study__patient", "assigned_to").get(pk=candidate)
                _audit_report(
                    report, "Study claimed (next study)", action=Action.UPDATE, request=request, user=user
                )
                return report
    raise ReportError("Other radiologists claimed every study offered; try again.")
