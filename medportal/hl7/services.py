"""The HL7 outbox: queue the message of each signature, send it, record the answer, resend.

A signature commits, then ``report_signed`` reaches ``message_queue`` (medportal.hl7.receivers):
the message is built and stored as pending, and its send task is enqueued once that commits.
Nothing between the signature and the send may lose it: the outbox sweep (every
MEDPORTAL_HL7_SWEEP_SECONDS on the interfaces worker, and when it starts) creates the message
of any recent signature that has none and sends again every pending message whose task was
lost (the broker was down, a worker died holding it).
"""

from __future__ import annotations

import datetime
import logging
import uuid

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from medportal.audit.models import Action, EventType, Outcome
from medportal.hl7 import mllp
from medportal.hl7.message import ENCODING, AckError, oru_r01, parse_ack
from medportal.hl7.models import MessageStatus, OutboundMessage
from medportal.imaging.auditing import study_audit
from medportal.reporting.freezing import signed_snapshot
from medportal.reporting.lifecycle import FINAL
from medportal.reporting.models import Addendum, Report

logger = logging.getLogger(__name__)

SEND_TASK = "medportal.hl7.send"
SWEEP_TASK = "medportal.hl7.sweep"
PENDING = MessageStatus.PENDING


class OutboxError(Exception):
    """An outbox action that is not possible now; the message says why."""


def hl7_configured() -> bool:
    return bool(settings.MEDPORTAL_HL7_HOST)


def hl7_destination() -> str:
    return f"{settings.MEDPORTAL_HL7_HOST}:{settings.MEDPORTAL_HL7_PORT}" if hl7_configured() else ""


def _new_control_id() -> str:
    return uuid.uuid4().hex[:20].upper()


def _build(report: Report, addendum: Addendum | None, control_id: str, now: datetime.datetime) -> str:
    """The message of a signature, from the snapshots frozen when it was signed."""
    if not report.is_signed:
        raise ValueError("only a signed report is sent")
    signed = signed_snapshot(report.pk, up_to_addendum=addendum.number if addendum is not None else 0)
    return oru_r01(signed=signed, control_id=control_id, created_at=now)


def _signature(report_id: int, addendum_id: int | None) -> tuple[Report, Addendum | None]:
    report = Report.objects.select_related("study__patient", "signed_by").get(pk=report_id)
    addendum = None
    if addendum_id is not None:
        addendum = Addendum.objects.select_related("signed_by").get(pk=addendum_id, report=report)
    return report, addendum


def message_queue(*, report_id: int, addendum_id: int | None) -> OutboundMessage | None:
    """The message of one signature (the report's, or an addendum's), stored as pending and sent
    after commit. A signature has one message: asking again returns it. None when HL7 is off."""
    if not hl7_configured():
        return None
    existing = OutboundMessage.objects.filter(report_id=report_id, addendum_id=addendum_id).first()
    if existing is not None:
        return existing
    report, addendum = _signature(report_id, addendum_id)
    now = timezone.now()
    control_id = _new_control_id()
    try:
        with transaction.atomic():
            message = OutboundMessage.objects.create(
                report=report,
                addendum=addendum,
                signed_at=addendum.signed_at if addendum else report.signed_at,
                control_id=control_id,
                payload=_build(report, addendum, control_id, now),
                destination=hl7_destination(),
                next_attempt_at=now,
            )
    except IntegrityError:  # the sweep (or a second delivery of the signal) created it meanwhile
        return OutboundMessage.objects.get(report_id=report_id, addendum_id=addendum_id)
    transaction.on_commit(lambda: _enqueue(message.pk))
    return message


def _enqueue(message_id: int) -> None:
    try:
        current_app.send_task(SEND_TASK, args=[message_id], queue=settings.MEDPORTAL_INTERFACES_QUEUE)
    except Exception:  # the broker is down: the message stays pending and the sweep sends it
        logger.exception("HL7 message %s could not be queued; the outbox sweep will send it", message_id)


def _lease() -> datetime.timedelta:
    """Longer than one attempt can take (connect, then wait for the ACK), with room to record it."""
    return datetime.timedelta(seconds=2 * settings.MEDPORTAL_HL7_ACK_TIMEOUT_SECONDS + 30)


def _claim(message_id: int) -> OutboundMessage | None:
    """Take a pending message for one attempt (a conditional UPDATE: one sender at a time).
    None when it is not pending, another worker holds it, or an earlier message of the same
    report has not gone out yet (a correction must not reach the EHR before its final)."""
    now = timezone.now()
    earlier = OutboundMessage.objects.filter(report=OuterRef("report"), status=PENDING).filter(
        Q(signed_at__lt=OuterRef("signed_at")) | Q(signed_at=OuterRef("signed_at"), pk__lt=OuterRef("pk"))
    )
    claimed = (
        OutboundMessage.objects.filter(pk=message_id, status=PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .filter(~Exists(earlier))
        .update(
            claimed_until=now + _lease(),
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            destination=hl7_destination(),
        )
    )
    if not claimed:
        return None
    return OutboundMessage.objects.select_related("report__study__patient").get(pk=message_id)


def message_deliver(*, message_id: int) -> float | None:
    """One attempt at sending a pending message over MLLP, and its outcome recorded: AA sent,
    AE/AR failed with the receiver's reason. Returns the seconds to wait before the next attempt
    when this one could not deliver it (no connection, no ACK) and attempts are left, else None."""
    message = _claim(message_id)
    if message is None:
        return None
    if not hl7_configured():
        return _not_delivered(message, "MEDPORTAL_HL7_HOST is not set on the interfaces worker")
    answer = b""
    try:
        answer = mllp.exchange(
            host=settings.MEDPORTAL_HL7_HOST,
            port=settings.MEDPORTAL_HL7_PORT,
            payload=message.payload.encode(ENCODING),
            timeout=settings.MEDPORTAL_HL7_ACK_TIMEOUT_SECONDS,
        )
        ack = parse_ack(answer)
        if ack.control_id != message.control_id:
            raise AckError(f"The ACK answers message {ack.control_id!r}, not {message.control_id!r}")
        if not (ack.accepted or ack.rejected):
            raise AckError(f"The ACK's code {ack.code!r} is not one HL7 defines")
    except (mllp.DeliveryError, AckError) as exc:
        return _not_delivered(message, str(exc), answer=answer)
    _finish(
        message,
        status=MessageStatus.SENT if ack.accepted else MessageStatus.REJECTED,
        error="" if ack.accepted else ack.reason(),
        ack_code=ack.code,
        answer=answer,
    )
    return None


def _not_delivered(message: OutboundMessage, error: str, *, answer: bytes = b"") -> float | None:
    if message.attempts >= settings.MEDPORTAL_HL7_MAX_ATTEMPTS:
        error = f"Not delivered after {message.attempts} attempts. Last error: {error}"
        _finish(message, status=MessageStatus.FAILED, error=error, ack_code="", answer=answer)
        return None
    delay = min(
        settings.MEDPORTAL_HL7_RETRY_SECONDS * 2 ** (message.attempts - 1),
        settings.MEDPORTAL_HL7_RETRY_MAX_SECONDS,
    )
    OutboundMessage.objects.filter(pk=message.pk, status=PENDING).update(
        claimed_until=None,
        last_error=error,
        ack_message=answer.decode(ENCODING, errors="replace"),
        next_attempt_at=timezone.now() + datetime.timedelta(seconds=delay),
    )
    logger.warning(
        "HL7 message %s: attempt %s failed (%s); next in %s s", message.pk, message.attempts, error, delay
    )
    return float(delay)


_OUTCOMES = {
    MessageStatus.SENT: ("HL7 report sent to the EHR", Outcome.SUCCESS),
    MessageStatus.REJECTED: ("HL7 report rejected by the EHR", Outcome.MINOR_FAILURE),
    MessageStatus.FAILED: ("HL7 report not delivered to the EHR", Outcome.SERIOUS_FAILURE),
}


def _finish(message: OutboundMessage, *, status: str, error: str, ack_code: str, answer: bytes) -> None:
    """Record a message's final outcome, audit it (the report has left MedPortal, or failed to),
    and send the report's next waiting message, if any."""
    with transaction.atomic():
        done = OutboundMessage.objects.filter(pk=message.pk, status=PENDING).update(
            status=status,
            last_error=error,
            ack_code=ack_code,
            ack_message=answer.decode(ENCODING, errors="replace"),
            claimed_until=None,
            finished_at=timezone.now(),
        )
        if not done:
            return
        description, outcome = _OUTCOMES[status]
        message_audit(
            message,
            description,
            action=Action.READ,  # DICOM audit: an export reads the data it sends
            outcome=outcome,
            username="medportal",
            detail={"ack": ack_code, "attempts": message.attempts, "error": error[:500]},
        )
        following = (
            OutboundMessage.objects.filter(report_id=message.report_id, status=PENDING)
            .order_by("signed_at", "pk")
            .values_list("pk", flat=True)
            .first()
        )
        if following is not None:
            transaction.on_commit(lambda: _enqueue(following))
    log = logger.info if status == MessageStatus.SENT else logger.warning
    log("HL7 message %s %s (%s) %s", message.pk, status, ack_code or "no ACK", error)


def message_audit(message: OutboundMessage, description: str, *, detail: dict, **kwargs) -> None:
    """Every step of an HL7 message (sent, acknowledged, failed, resent or refused)."""
    study_audit(
        message.report.study,
        description,
        event_type=EventType.EXPORT,
        object_type="hl7_message",
        object_id=message.pk,
        detail={
            "control_id": message.control_id,
            "result_status": message.result_status,
            "destination": message.destination,
            **detail,
        },
        **kwargs,
    )


def message_resend(*, message: OutboundMessage, user, request=None) -> OutboundMessage:
    """Send a failed message again, as a new message (new control id) with the same content."""
    refusal = None
    if not hl7_configured():
        refusal = "HL7 is not configured (MEDPORTAL_HL7_HOST is not set): nothing was sent."
    else:
        with transaction.atomic():
            locked = OutboundMessage.objects.select_for_update().get(pk=message.pk)
            if locked.is_failed:
                report, addendum = _signature(locked.report_id, locked.addendum_id)
                now = timezone.now()
                control_id = _new_control_id()
                OutboundMessage.objects.filter(pk=locked.pk).update(
                    status=PENDING,
                    control_id=control_id,
                    payload=_build(report, addendum, control_id, now),
                    attempts=0,
                    ack_code="",
                    ack_message="",
                    destination=hl7_destination(),
                    next_attempt_at=now,
                    claimed_until=None,
                    finished_at=None,
                )
                message_audit(
                    locked,
                    "HL7 message sent again",
                    action=Action.EXECUTE,
                    request=request,
                    user=user,
                    detail={"previous_status": locked.status, "new_control_id": control_id},
                )
                transaction.on_commit(lambda: _enqueue(locked.pk))
                return OutboundMessage.objects.get(pk=locked.pk)
            refusal = (
                f"Only a failed message can be sent again; this one is {locked.get_status_display().lower()}."
            )
    message_audit(
        message,
        "HL7 resend refused",
        action=Action.EXECUTE,
        request=request,
        user=user,
        outcome=Outcome.MINOR_FAILURE,
        detail={"reason": refusal},
    )
    raise OutboxError(refusal)


def outbox_sweep(*, now: datetime.datetime | None = None, grace_seconds: int = 60) -> int:
    """Queue what a crash may have left behind; returns how many messages it (re)queued.

    Signatures of the last MEDPORTAL_HL7_CATCHUP_HOURS without a message get one; pending
    messages that nobody holds and whose next attempt is over ``grace_seconds`` late (their task
    was lost) are sent again. A task sent twice is harmless: only one claim succeeds."""
    if not hl7_configured():
        return 0
    now = now or timezone.now()
    since = now - datetime.timedelta(hours=settings.MEDPORTAL_HL7_CATCHUP_HOURS)
    reports = (
        Report.objects.filter(status__in=FINAL, signed_at__gte=since)
        .exclude(Exists(OutboundMessage.objects.filter(report=OuterRef("pk"), addendum__isnull=True)))
        .values_list("signed_at", "pk")
    )
    addenda = (
        Addendum.objects.filter(signed_at__gte=since)
        .exclude(Exists(OutboundMessage.objects.filter(addendum=OuterRef("pk"))))
        .values_list("signed_at", "report_id", "pk")
    )
    missed = sorted([(signed_at, pk, None) for signed_at, pk in reports] + list(addenda))
    for _, report_id, addendum_id in missed:
        logger.warning(
            "HL7: report %s (addendum %s) was signed without a message; queuing it", report_id, addendum_id
        )
        try:
            message_queue(report_id=report_id, addendum_id=addendum_id)
        except Exception:  # one that cannot be built must not hold up the others
            logger.exception("HL7: the message of report %s (addendum %s) failed", report_id, addendum_id)
    due = (
        OutboundMessage.objects.filter(
            status=PENDING, next_attempt_at__lte=now - datetime.timedelta(seconds=grace_seconds)
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("signed_at", "pk")
        .values_list("pk", flat=True)
    )
    lost = list(due)
    for message_id in lost:
        _enqueue(message_id)
    return len(missed) + len(lost)
