"""Every change to a report goes through these functions (web, API and worker alike)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from celery import current_app
from django.contrib.auth import authenticate
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from medportal.audit.models import Action, EventType, Outcome
from medportal.audit.services import audit_record
from medportal.celery import DRAFT_TASK
from medportal.imaging.models import Study
from medportal.reporting.models import Report, ReportStatus, ReportVersion


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


def _audit_report(
    report: Report,
    description: str,
    *,
    action: Action,
    request=None,
    user=None,
    outcome: Outcome = Outcome.SUCCESS,
    detail: dict | None = None,
) -> None:
    study = report.study
    audit_record(
        event_type=EventType.PATIENT_RECORD,
        action=action,
        description=description,
        outcome=outcome,
        request=request,
        user=user,
        patient_id=study.patient.patient_id,
        study_uid=study.study_uid,
        accession_number=study.accession_number,
        object_type="report",
        object_id=report.pk,
        detail=detail,
    )


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
        Report.objects.filter(pk=locked.pk).update(
            status=ReportStatus.QUEUED,
            attempt=F("attempt") + 1,
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
        transaction.on_commit(lambda: current_app.send_task(DRAFT_TASK, args=[locked.pk, attempt]))
    return locked


def study_open_report(*, study: Study, user, auto_draft: bool, request=None) -> Report:
    """Create the report of a newly received study, queueing a draft when asked."""
    report = report_for_study(study=study)
    if auto_draft and report.attempt == 0:
        report = draft_request(report=report, user=user, request=request)
    return report


# -- the worker's side ----------------------------------------------------------------


def draft_start(*, report_id: int, attempt: int) -> bool:
    """Claim a queued draft. Exactly one caller gets True; redelivered tasks get False."""
    return bool(
        Report.objects.filter(pk=report_id, attempt=attempt, status=ReportStatus.QUEUED).update(
            status=ReportStatus.DRAFTING, draft_started_at=timezone.now()
        )
    )


def draft_progress(*, report_id: int, attempt: int, text: str) -> bool:
    """Save the text so far; False when the draft was superseded."""
    return bool(
        Report.objects.filter(pk=report_id, attempt=attempt, status=ReportStatus.DRAFTING).update(
            draft_text=text
        )
    )


def draft_finish(*, report_id: int, attempt: int, text: str, provenance: DraftProvenance) -> bool:
    findings, impression = split_sections(text)
    with transaction.atomic():
        updated = Report.objects.filter(pk=report_id, attempt=attempt, status=ReportStatus.DRAFTING).update(
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
        report = Report.objects.select_related("study__patient").get(pk=report_id)
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
            detail={"model_id": provenance.model_id, "attempt": attempt},
        )
    return True


def draft_fail(*, report_id: int, attempt: int, reason: str) -> bool:
    updated = Report.objects.filter(
        pk=report_id, attempt=attempt, status__in=[ReportStatus.QUEUED, ReportStatus.DRAFTING]
    ).update(status=ReportStatus.FAILED, failure_reason=reason[:2000], draft_finished_at=timezone.now())
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
    *, report: Report, user, password: str, expected_version: int | None = None, request=None
) -> Report:
    """Sign after re-authentication. Exactly one of two concurrent signers succeeds."""
    if authenticate(request, username=user.get_username(), password=password) is None:
        _audit_report(
            report,
            "Sign-off refused: wrong password",
            action=Action.UPDATE,
            request=request,
            user=user,
            outcome=Outcome.MINOR_FAILURE,
        )
        raise ReauthenticationFailed("The password is not correct; the report was not signed.")
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
