"""The radiologist's side: saving edits as versions, signing, addenda, cancelling."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from medportal.access.roles import CAN_CANCEL_REPORTS, CAN_SIGN_REPORTS, has_role
from medportal.audit.models import Action
from medportal.reporting import lifecycle
from medportal.reporting.auditing import report_audit
from medportal.reporting.freezing import addendum_content, content_freeze, report_content
from medportal.reporting.lifecycle import ReportError, transition
from medportal.reporting.models import Addendum, Report, ReportVersion
from medportal.reporting.services.signoff import (
    ClaimedByAnother,
    ReauthenticationFailed,
    claim_check,
    refusal_audit,
    signer_reauthenticate,
)
from medportal.reporting.signals import report_signed

__all__ = [
    "ClaimedByAnother",
    "ReauthenticationFailed",
    "ReportConflict",
    "addendum_sign",
    "report_cancel",
    "report_save",
    "report_sign",
]


class ReportConflict(ReportError):
    """Someone else saved the report first."""

    def __init__(self, message: str, report: Report):
        super().__init__(message)
        self.report = report


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

    Fails with ReportConflict when someone saved first, ClaimedByAnother when another
    radiologist claimed the study. Technique and Comparison stay as they are when not given
    (their template has no such section).
    """
    try:
        return _save(
            report=report,
            user=user,
            findings=findings,
            impression=impression,
            expected_version=expected_version,
            technique=technique,
            comparison=comparison,
            request=request,
        )
    except ClaimedByAnother as exc:
        refusal_audit(report, exc, what="Edit", user=user, request=request)
        raise


def _save(*, report, user, findings, impression, expected_version, technique, comparison, request) -> Report:
    with transaction.atomic():
        current = (
            Report.objects.select_for_update(of=("self",))
            .select_related("study__patient", "assigned_to")
            .get(pk=report.pk)
        )
        status = transition(current.status, "edit")
        claim_check(current, user=user, doing="edit")
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
        report_audit(
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
    Exactly one of two concurrent signers succeeds; every refusal is audited once.

    The signature freezes everything the report's outputs show (``freezing``); the snapshot's
    hash goes into the signature's audit event."""
    try:
        return _sign(
            report=report,
            user=user,
            password=password,
            otp_code=otp_code,
            expected_version=expected_version,
            request=request,
        )
    except ReportError as exc:
        refusal_audit(report, exc, what="Sign-off", user=user, request=request)
        raise


def _sign(*, report: Report, user, password: str, otp_code: str, expected_version, request) -> Report:
    signer_reauthenticate(
        report=report, user=user, password=password, otp_code=otp_code, request=request, what="Sign-off"
    )
    with transaction.atomic():
        current = (
            Report.objects.select_for_update(of=("self",))
            .select_related("study__patient", "assigned_to")
            .get(pk=report.pk)
        )
        status = transition(current.status, "sign")
        claim_check(current, user=user, doing="sign")
        if expected_version is not None and current.version != expected_version:
            raise ReportConflict(
                "The report changed since you opened it; read the newer text, then sign.", current
            )
        if not (current.findings.strip() or current.impression.strip()):
            raise ReportError("An empty report cannot be signed.")
        signed_at = timezone.now()
        content = report_content(current, signer=user, signed_at=signed_at)
        Report.objects.filter(pk=current.pk, status__in=lifecycle.sources("sign")).update(
            status=status, signed_by=user, signed_at=signed_at
        )
        current.refresh_from_db()
        frozen = content_freeze(report=current, content=content)
        report_audit(
            current,
            "Report signed",
            action=Action.UPDATE,
            request=request,
            user=user,
            detail={"version": current.version, "content_sha256": frozen.sha256},
        )
        transaction.on_commit(
            lambda: report_signed.send(sender=Report, report_id=current.pk, addendum_id=None)
        )
    return current


def addendum_sign(
    *, report: Report, user, text: str, password: str, otp_code: str = "", request=None
) -> Addendum:
    """Add a signed correction to a signed report (re-authenticated like a sign-off).

    The report's own text never changes; its addenda are numbered in the order signed.
    """
    try:
        return _addendum_sign(
            report=report, user=user, text=text, password=password, otp_code=otp_code, request=request
        )
    except ReportError as exc:
        refusal_audit(report, exc, what="Addendum sign-off", user=user, request=request)
        raise


def _addendum_sign(*, report: Report, user, text: str, password: str, otp_code: str, request) -> Addendum:
    text = text.strip()
    if not text:
        raise ReportError("An empty addendum cannot be signed.")
    if not has_role(user, *CAN_SIGN_REPORTS):
        raise ReportError("Only a radiologist can sign an addendum.")
    signer_reauthenticate(
        report=report, user=user, password=password, otp_code=otp_code, request=request, what="Sign-off"
    )
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
        frozen = content_freeze(report=current, addendum=addendum, content=addendum_content(addendum))
        report_audit(
            current,
            "Addendum signed",
            action=Action.CREATE,
            request=request,
            user=user,
            detail={"addendum": addendum.number, "content_sha256": frozen.sha256},
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
    if not has_role(user, *CAN_CANCEL_REPORTS):
        raise ReportError("Only a radiologist or an admin can cancel a report.")
    with transaction.atomic():
        current = Report.objects.select_for_update().select_related("study__patient").get(pk=report.pk)
        status = transition(current.status, "cancel")
        Report.objects.filter(pk=current.pk).update(status=status, cancel_reason=reason[:2000])
        current.refresh_from_db()
        report_audit(
            current,
            "Report cancelled",
            action=Action.UPDATE,
            request=request,
            user=user,
            detail={"reason": reason},
        )
    return current
