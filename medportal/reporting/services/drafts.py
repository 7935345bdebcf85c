"""AI drafts: requesting one (after commit, to the model's queue) and the worker writing it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from celery import current_app
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from medportal.audit.models import Action, Outcome
from medportal.celery import DRAFT_TASK, draft_queue
from medportal.imaging.models import Study
from medportal.reporting import lifecycle
from medportal.reporting.auditing import report_audit
from medportal.reporting.lifecycle import transition
from medportal.reporting.models import Report, ReportStatus, ReportTemplate, ReportVersion
from medportal.reporting.sections import split_sections
from medportal.reporting.services import leases


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
        report_audit(
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
        draft_lease_until=leases.lease_until(),
    )
    current = Report.objects.filter(pk=report_id, attempt=attempt).values("status", "draft_claim").first()
    if updated and current:
        return DraftClaim(report_id, attempt, current["draft_claim"])
    # Still drafting (a redelivery), or queued again by the lease sweep, with no claim left.
    if (
        current
        and current["status"] in lifecycle.sources("fail_draft")
        and current["draft_claim"] >= MAX_DRAFT_CLAIMS
    ):
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
    """Save the text so far (renewing the lease); False when the claim was lost (redrafted, reclaimed)."""
    return bool(_claimed(claim).update(draft_text=text, draft_lease_until=leases.lease_until()))


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
        report_audit(
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
        report_audit(
            report,
            "AI draft failed",
            action=Action.CREATE,
            outcome=Outcome.SERIOUS_FAILURE,
            detail={"reason": reason[:500], "attempt": attempt},
        )
    return bool(updated)
