"""Critical results, closed loop: mark, tell (or have MedPortal e-mail a link), acknowledge,
escalate. Every function guards the state it expects (``lifecycle``), changes rows with
conditional UPDATEs and audits what it did.

The e-mail is an outbox: the result is stored as "sending" and its task is queued after commit
(interfaces worker); a failure is retried with doubling delays, and the sweep sends again what
a lost task left behind. The link is ``/critical/ack/<token>/`` where the token is the result's
id and a random nonce signed with SECRET_KEY: nothing in the database can be turned into a link.
"""

from __future__ import annotations

import datetime
import logging
import secrets

from celery import current_app
from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from medportal.access.roles import CAN_COMMUNICATE_CRITICAL, has_role
from medportal.accounts.names import display_name
from medportal.audit.models import Action, Outcome
from medportal.communication.auditing import critical_audit
from medportal.communication.lifecycle import UNACKNOWLEDGED, CommunicationError, CriticalStatus, transition
from medportal.communication.lifecycle import sources as lifecycle_sources
from medportal.communication.models import Acknowledgement, CriticalResult, Delivery, Method
from medportal.reporting.models import Report, ReportStatus

logger = logging.getLogger(__name__)

SEND_TASK = "medportal.communication.send_critical_email"
SWEEP_TASK = "medportal.communication.sweep"
_LINK_SALT = "medportal.critical-ack"


def critical_categories() -> list[str]:
    return list(settings.MEDPORTAL_CRITICAL_CATEGORIES)


def email_configured() -> bool:
    """Whether MedPortal can e-mail an acknowledgement link (an SMTP host, or a file/console backend)."""
    return settings.MEDPORTAL_EMAIL_BACKEND != "smtp" or bool(settings.EMAIL_HOST)


def _locked(critical: CriticalResult) -> CriticalResult:
    return (
        CriticalResult.objects.select_for_update()
        .select_related("report__study__patient")
        .get(pk=critical.pk)
    )


def critical_mark(*, report: Report, user, category: str, finding: str, request=None) -> CriticalResult:
    """Mark a finding of ``report`` critical, in one of the configured categories."""
    finding = finding.strip()
    if not has_role(user, *CAN_COMMUNICATE_CRITICAL):
        raise CommunicationError("Only a radiologist can mark a critical result.")
    if category not in critical_categories():
        raise CommunicationError("Choose a category from the list.")
    if not finding:
        raise CommunicationError("Name the critical finding.")
    if report.status == ReportStatus.CANCELLED:
        raise CommunicationError("This report was cancelled; it has no critical results.")
    with transaction.atomic():
        critical = CriticalResult.objects.create(
            report=report, category=category, finding=finding[:2000], created_by=user
        )
        critical_audit(
            critical,
            "Critical result marked",
            action=Action.CREATE,
            request=request,
            user=user,
            detail={"category": category, "finding": critical.finding},
        )
    return critical


def critical_notify(
    *,
    critical: CriticalResult,
    user,
    recipient: str,
    method: str,
    email: str = "",
    read_back: bool = False,
    request=None,
) -> CriticalResult:
    """Record whom the radiologist told and how (``read_back``: they read it back, which is the
    acknowledgement), or, with the e-mail method, have MedPortal send them the acknowledgement link."""
    recipient = recipient.strip()
    if not has_role(user, *CAN_COMMUNICATE_CRITICAL):
        raise CommunicationError("Only a radiologist can record the communication of a critical result.")
    if not recipient:
        raise CommunicationError("Name whom you told (or whom MedPortal should notify).")
    if method not in Method.values:
        raise CommunicationError("Choose how they were told.")
    by_email = method == Method.EMAIL_LINK
    if by_email and not email_configured():
        raise CommunicationError("MedPortal cannot send e-mail here (no MEDPORTAL_SMTP_HOST).")
    if by_email and "@" not in email:
        raise CommunicationError("Give the e-mail address MedPortal should send the link to.")
    if read_back and method not in (Method.PHONE, Method.IN_PERSON):
        raise CommunicationError("A read-back is recorded for a phone call or in person only.")
    now = timezone.now()
    with transaction.atomic():
        current = _locked(critical)
        status = transition(current.status, "notify")
        changes = {
            "status": status,
            "recipient": recipient[:200],
            "method": method,
            "recipient_email": email.strip() if by_email else "",
            "notified_at": now,
            "notified_by": user,
        }
        if by_email:
            changes |= {
                "link_nonce": secrets.token_hex(16),
                "link_base_url": request.build_absolute_uri("/").rstrip("/") if request else "",
                "delivery": Delivery.PENDING,
                "delivery_attempts": 0,
                "delivery_error": "",
            }
        CriticalResult.objects.filter(pk=current.pk, status__in=lifecycle_sources("notify")).update(**changes)
        current.refresh_from_db()
        critical_audit(
            current,
            "Critical result communicated" if not by_email else "Critical result notification queued",
            action=Action.UPDATE,
            request=request,
            user=user,
            detail={"recipient": recipient, "method": method, "email": changes["recipient_email"]},
        )
        if read_back:
            _acknowledge(current, by=recipient, how=Acknowledgement.READ_BACK, request=request, user=user)
        if by_email:
            critical_id = current.pk
            transaction.on_commit(lambda: _enqueue(critical_id))
    current.refresh_from_db()
    return current


def critical_read_back(*, critical: CriticalResult, user, name: str, request=None) -> CriticalResult:
    """The radiologist records that the person told read the result back (the acknowledgement)."""
    if not has_role(user, *CAN_COMMUNICATE_CRITICAL):
        raise CommunicationError("Only a radiologist can record a read-back.")
    name = name.strip() or critical.recipient
    with transaction.atomic():
        current = _locked(critical)
        transition(current.status, "acknowledge")
        _acknowledge(current, by=name, how=Acknowledgement.READ_BACK, request=request, user=user)
    current.refresh_from_db()
    return current


def _acknowledge(
    critical: CriticalResult, *, by: str, how: str, request, user=None, username: str = ""
) -> None:
    # Conditional: of two acknowledgements at once (the link and a read-back), one is recorded.
    updated = CriticalResult.objects.filter(
        pk=critical.pk, status__in=lifecycle_sources("acknowledge")
    ).update(
        status=CriticalStatus.ACKNOWLEDGED,
        acknowledged_at=timezone.now(),
        acknowledged_by=by[:200],
        acknowledgement=how,
    )
    if not updated:
        raise CommunicationError("This critical result is already acknowledged.")
    critical_audit(
        critical,
        "Critical result acknowledged",
        action=Action.UPDATE,
        request=request,
        user=user,
        username=username,
        detail={"by": by, "how": how},
    )


# -- the acknowledgement link -----------------------------------------------------------------


def critical_link_token(critical: CriticalResult) -> str:
    return signing.Signer(salt=_LINK_SALT).sign(f"{critical.pk}.{critical.link_nonce}")


def critical_link(critical: CriticalResult) -> str:
    path = reverse("critical-acknowledge", kwargs={"token": critical_link_token(critical)})
    return f"{critical.link_base_url}{path}"


def critical_for_token(token: str) -> CriticalResult | None:
    """The result a link names, or None for a link that is forged, mistyped or replaced since."""
    try:
        critical_id, nonce = signing.Signer(salt=_LINK_SALT).unsign(token).split(".", 1)
    except (signing.BadSignature, ValueError):
        return None
    critical = (
        CriticalResult.objects.select_related("report__study__patient").filter(pk=critical_id).first()
        if critical_id.isdigit()
        else None
    )
    if critical is None or not nonce or not secrets.compare_digest(critical.link_nonce, nonce):
        return None
    return critical


def critical_acknowledge_link(*, critical: CriticalResult, name: str, request=None) -> CriticalResult:
    """The clinician opened the link and confirmed they received the result."""
    name = name.strip()
    if not name:
        raise CommunicationError("Give your name to acknowledge.")
    with transaction.atomic():
        current = _locked(critical)
        transition(current.status, "acknowledge")
        _acknowledge(
            current, by=name, how=Acknowledgement.LINK, request=request, username=f"{name[:100]} (link)"
        )
    current.refresh_from_db()
    return current


# -- the e-mail outbox ------------------------------------------------------------------------


def _enqueue(critical_id: int, countdown: int = 0) -> None:
    try:
        current_app.send_task(
            SEND_TASK, args=[critical_id], queue=settings.MEDPORTAL_INTERFACES_QUEUE, countdown=countdown
        )
    except Exception:  # the broker is away: the sweep sends it
        logger.exception("critical result %s: e-mail not queued; the sweep will", critical_id)


def critical_email_deliver(*, critical_id: int) -> int | None:
    """Send the link of one pending e-mail. Returns a delay to try again after, or None when done."""
    critical = CriticalResult.objects.select_related("report__study__patient").get(pk=critical_id)
    if critical.delivery != Delivery.PENDING:
        return None
    study = critical.report.study
    body = (
        f"{settings.MEDPORTAL_INSTITUTION_NAME}: a critical result for accession "
        f"{study.accession_number or study.pk} ({critical.category}) awaits your acknowledgement.\n\n"
        f"Open this link to read it and confirm you received it:\n{critical_link(critical)}\n"
    )
    attempts = critical.delivery_attempts + 1
    try:
        send_mail(
            f"Critical result to acknowledge ({critical.category})",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [critical.recipient_email],
        )
    except Exception as exc:
        failed = attempts >= settings.MEDPORTAL_HL7_MAX_ATTEMPTS
        CriticalResult.objects.filter(pk=critical.pk).update(
            delivery_attempts=attempts,
            delivery_error=str(exc)[:1000],
            delivery=Delivery.FAILED if failed else Delivery.PENDING,
        )
        critical_audit(
            critical,
            "Critical result e-mail failed" if failed else "Critical result e-mail not sent yet",
            action=Action.EXECUTE,
            username="medportal",
            outcome=Outcome.MINOR_FAILURE,
            detail={"error": str(exc)[:300], "attempt": attempts},
        )
        return None if failed else min(settings.MEDPORTAL_HL7_RETRY_SECONDS * 2 ** (attempts - 1), 600)
    CriticalResult.objects.filter(pk=critical.pk).update(
        delivery=Delivery.SENT, delivery_attempts=attempts, delivery_error=""
    )
    critical_audit(
        critical,
        "Critical result e-mail sent",
        action=Action.EXECUTE,
        username="medportal",
        detail={"to": critical.recipient_email},
    )
    return None


# -- escalation -------------------------------------------------------------------------------


def critical_escalate_overdue(*, now: datetime.datetime | None = None) -> int:
    """Flag each result not acknowledged within MEDPORTAL_CRITICAL_ESCALATE_MINUTES (once each)."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(minutes=settings.MEDPORTAL_CRITICAL_ESCALATE_MINUTES)
    overdue = list(
        CriticalResult.objects.filter(
            status__in=sorted(UNACKNOWLEDGED), escalated_at__isnull=True, created_at__lte=cutoff
        ).select_related("report__study__patient")
    )
    for critical in overdue:
        # Conditional: of two sweeps at once, one escalates each result.
        if CriticalResult.objects.filter(
            pk=critical.pk, escalated_at__isnull=True, status__in=sorted(UNACKNOWLEDGED)
        ).update(escalated_at=now):
            critical_audit(
                critical,
                "Critical result escalated: not acknowledged in time",
                action=Action.UPDATE,
                username="medportal",
                detail={"minutes": settings.MEDPORTAL_CRITICAL_ESCALATE_MINUTES},
            )
    return len(overdue)


def critical_sweep() -> None:
    """Escalate what is overdue; send again e-mails whose task was lost (pending for a minute)."""
    critical_escalate_overdue()
    stale = timezone.now() - datetime.timedelta(seconds=60)
    for critical_id in CriticalResult.objects.filter(
        delivery=Delivery.PENDING, notified_at__lte=stale
    ).values_list("pk", flat=True):
        _enqueue(critical_id)


# -- what the report says ---------------------------------------------------------------------


def critical_statement(critical: CriticalResult, *, as_of: datetime.datetime | None = None) -> str:
    """The communication statement the signed report carries. With ``as_of`` (the signature),
    the statement as it stood then: a notification or acknowledgement recorded after the report
    was signed does not rewrite it (it is on the Critical results page, the audit trail and, if
    the radiologist writes one, an addendum)."""
    when = timezone.localtime
    notified = critical.notified_at and (as_of is None or critical.notified_at <= as_of)
    acknowledged = critical.acknowledged_at and (as_of is None or critical.acknowledged_at <= as_of)
    text = f"Critical result, {critical.category}: {critical.finding.strip().rstrip('.')}."
    if notified:
        who = display_name(critical.notified_by) if critical.notified_by else "the radiologist"
        text += (
            f" Communicated to {critical.recipient} {critical.get_method_display()} by {who}"
            f" on {when(critical.notified_at):%Y-%m-%d at %H:%M}."
        )
    else:
        text += " Not yet communicated."
    if acknowledged:
        text += (
            f" Acknowledged by {critical.acknowledged_by} ({critical.get_acknowledgement_display()})"
            f" on {when(critical.acknowledged_at):%Y-%m-%d at %H:%M}."
        )
    elif notified:
        text += " Not yet acknowledged."
    return text


def report_critical_results(report: Report, *, signed_at=None) -> list[CriticalResult]:
    """``report`` may be the live row or a signed snapshot of it (the outputs'). With
    ``signed_at``, only the results marked before the signature: a signed report's outputs do
    not change when a critical result is marked later (that one belongs in an addendum)."""
    results = CriticalResult.objects.filter(report_id=report.pk).select_related("notified_by")
    if signed_at is not None:
        results = results.filter(created_at__lte=signed_at)
    return list(results.order_by("created_at", "id"))


def report_critical_statements(report: Report, *, signed_at=None) -> list[str]:
    results = report_critical_results(report, signed_at=signed_at)
    return [critical_statement(critical, as_of=signed_at) for critical in results]
