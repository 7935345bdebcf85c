"""Signed reports reach a real MLLP listener through the real interfaces worker (Celery), with
ACK handling, retries, the outbox page, resending, and recovery of what a crash left behind."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from celery import current_app
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from medportal.audit.models import AuditEvent, EventType, Outcome
from medportal.hl7 import receivers
from medportal.hl7.models import MessageStatus, OutboundMessage
from medportal.hl7.services import SEND_TASK, message_queue
from medportal.reporting.models import Report
from medportal.reporting.services import editing
from medportal.reporting.signals import report_signed
from tests.conftest import PASSWORD, make_user
from tests.e2e.conftest import ARTIFACTS
from tests.hl7.conftest import new_study, segments, sign, wait_until, written_report

pytestmark = pytest.mark.e2e


def message_of(report, *, addendum=None) -> OutboundMessage:
    return wait_until(
        lambda: OutboundMessage.objects.filter(report=report, addendum=addendum).first(), what="the message"
    )


def settled(message: OutboundMessage, timeout: float = 30) -> OutboundMessage:
    """The message once it is no longer pending."""
    return wait_until(
        lambda: (m := OutboundMessage.objects.get(pk=message.pk)).status != MessageStatus.PENDING and m,
        timeout,
        what=f"message {message.pk} to be sent or failed",
    )


@pytest.fixture
def admin_client(client, transactional_db):
    client.force_login(make_user("ada", superuser=True))
    return client


def test_signing_a_report_sends_an_oru_r01_with_status_f_and_the_text(interfaces, client, radiologist):
    listener = interfaces.listener("AA")
    interfaces.start()
    report = written_report(radiologist, findings="Right lower lobe consolidation.", impression="Pneumonia.")

    client.force_login(radiologist)
    response = client.post(
        reverse("report-sign", args=[report.pk]), {"password": PASSWORD, "version": report.version}
    )
    assert response.status_code == 302  # back to the study page
    assert Report.objects.get(pk=report.pk).is_signed

    [received] = listener.wait_for(1)
    assert segments(received, "MSH")[0][8] == "ORU^R01^ORU_R01"
    assert segments(received, "OBR")[0][25] == "F"
    assert [obx[5] for obx in segments(received, "OBX")] == ["Right lower lobe consolidation.", "Pneumonia."]
    assert segments(received, "PID")[0][3].startswith("MRN-7^")
    assert "no AI draft was used" in segments(received, "NTE")[0][3]

    message = settled(message_of(report))
    assert (message.status, message.ack_code, message.attempts) == (MessageStatus.SENT, "AA", 1)
    assert message.control_id == segments(received, "MSH")[0][9]
    assert AuditEvent.objects.filter(
        event_type=EventType.EXPORT,
        description="HL7 report sent to the EHR",
        patient_id="MRN-7",
        object_id=str(message.pk),
        outcome=Outcome.SUCCESS,
    ).exists()


def test_an_addendum_sends_a_second_message_with_status_c_and_the_addendum(interfaces, radiologist):
    listener = interfaces.listener("AA")
    interfaces.start()
    report = sign(written_report(radiologist, findings="Small nodule.", impression="Follow up."), radiologist)
    listener.wait_for(1)
    addendum = editing.addendum_sign(
        report=report, user=radiologist, text="The nodule is calcified: benign.", password=PASSWORD
    )

    final, correction = listener.wait_for(2)
    assert segments(final, "OBR")[0][25] == "F" and segments(correction, "OBR")[0][25] == "C"
    assert [obx[5] for obx in segments(correction, "OBX")] == [
        "Small nodule.",
        "Follow up.",
        "Addendum 1: The nodule is calcified: benign.",
    ]
    assert settled(message_of(report, addendum=addendum)).status == MessageStatus.SENT
    assert OutboundMessage.objects.filter(report=report, status=MessageStatus.SENT).count() == 2


def test_an_ae_shows_failed_with_the_error_on_the_outbox_page_and_resend_sends_it_again(
    interfaces, radiologist, admin_client
):
    listener = interfaces.listener("AE", error="Patient MRN-7 is not registered")
    interfaces.start()
    report = sign(written_report(radiologist, findings="Clear.", impression="Normal."), radiologist)

    message = settled(message_of(report))
    # An AE is an answer, not a failure to deliver: it is not retried.
    assert (message.status, message.ack_code, message.attempts) == (MessageStatus.REJECTED, "AE", 1)
    page = admin_client.get(reverse("hl7-outbox") + "?show=failed").content.decode()
    assert "Failed: the receiver answered with an error" in page
    assert "Patient MRN-7 is not registered" in page and ">AE<" in page
    assert reverse("hl7-outbox-resend", args=[message.pk]) in page  # the resend button
    assert AuditEvent.objects.filter(description="HL7 outbox viewed", username="ada").exists()

    listener.mode = "AA"  # the EHR registered the patient
    response = admin_client.post(reverse("hl7-outbox-resend", args=[message.pk]))
    assert response.status_code == 302
    resent = settled(message)
    assert (resent.status, resent.ack_code, resent.attempts) == (MessageStatus.SENT, "AA", 1)
    first, second = listener.wait_for(2)
    assert segments(first, "MSH")[0][9] == message.control_id != segments(second, "MSH")[0][9]
    assert segments(second, "MSH")[0][9] == resent.control_id
    assert first.split("\r")[1:] == second.split("\r")[1:]  # the same content
    assert AuditEvent.objects.filter(description="HL7 message sent again", username="ada").exists()
    page = admin_client.get(reverse("hl7-outbox")).content.decode()
    assert reverse("hl7-outbox-resend", args=[message.pk]) not in page  # nothing to resend now

    # A message that did not fail is not sent again; the refusal says why and is audited.
    response = admin_client.post(reverse("hl7-outbox-resend", args=[message.pk]), follow=True)
    assert "Only a failed message can be sent again; this one is sent." in response.content.decode()
    assert AuditEvent.objects.filter(description="HL7 resend refused", outcome=Outcome.MINOR_FAILURE).exists()


@pytest.mark.parametrize(
    "mode, reason",
    [
        (None, "Cannot connect to 127.0.0.1:"),
        ("close", "The receiver closed the connection without sending an ACK"),
        ("silent", "No ACK from 127.0.0.1:"),
    ],
)
def test_an_unreachable_receiver_is_retried_then_fails_visibly(
    interfaces, radiologist, admin_client, mode, reason
):
    listener = interfaces.listener(mode) if mode else None
    interfaces.start()
    report = sign(written_report(radiologist, findings="Clear.", impression="Normal."), radiologist)

    message = settled(message_of(report), timeout=60)
    assert (message.status, message.attempts, message.ack_code) == (MessageStatus.FAILED, 3, "")
    assert message.last_error.startswith("Not delivered after 3 attempts. Last error: ")
    assert reason in message.last_error
    if listener is not None:
        assert len(listener.wait_for(3)) == 3  # each attempt reached it
    page = admin_client.get(reverse("hl7-outbox")).content.decode()
    assert "Failed: not delivered" in page and reason in page
    assert reverse("hl7-outbox-resend", args=[message.pk]) in page
    assert AuditEvent.objects.filter(
        description="HL7 report not delivered to the EHR", outcome=Outcome.SERIOUS_FAILURE
    ).exists()


def test_nothing_is_lost_when_the_receiver_comes_up_later(interfaces, radiologist):
    interfaces.configure(MEDPORTAL_HL7_MAX_ATTEMPTS=50)
    interfaces.start()  # nothing listens yet
    report = sign(written_report(radiologist, findings="Fracture.", impression="Distal radius."), radiologist)
    addendum = editing.addendum_sign(report=report, user=radiologist, text="Undisplaced.", password=PASSWORD)

    final = message_of(report)
    wait_until(lambda: OutboundMessage.objects.get(pk=final.pk).attempts >= 2, what="a retry")
    waiting = message_of(report, addendum=addendum)
    failing = OutboundMessage.objects.get(pk=final.pk)
    assert failing.status == MessageStatus.PENDING and "Cannot connect" in failing.last_error
    # The correction waits for its report's final message: the EHR must not get it first.
    assert OutboundMessage.objects.get(pk=waiting.pk).attempts == 0

    listener = interfaces.listener("AA")
    first, second = listener.wait_for(2)
    assert segments(first, "OBR")[0][25] == "F" and segments(second, "OBR")[0][25] == "C"
    assert settled(final).status == settled(waiting).status == MessageStatus.SENT
    assert len(listener.received) == 2  # each exactly once


def test_the_sweep_sends_what_a_crash_left_behind(interfaces, radiologist):
    """A crash right after a signature committed (no message created), and a message whose task
    was lost (the queue emptied): the interfaces worker's sweep at start-up sends both."""
    listener = interfaces.listener("AA")
    report_signed.disconnect(sender=Report, dispatch_uid="hl7-queue-message")  # the process dies here
    try:
        crashed = sign(written_report(radiologist, findings="One.", impression="Lost."), radiologist)
    finally:
        receivers.connect()
    assert not OutboundMessage.objects.filter(report=crashed).exists()

    study = new_study(mrn="MRN-8", accession="ACC-8")
    queued = written_report(radiologist, findings="Two.", impression="Queued.", study=study)
    queued = sign(queued, radiologist)
    lost = message_of(queued)
    broker = redis.Redis.from_url(settings.REDIS_URL)
    assert broker.llen(interfaces.queue) == 1
    broker.delete(interfaces.queue)  # its task is gone
    OutboundMessage.objects.filter(pk=lost.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))

    interfaces.start()
    received = listener.wait_for(2)
    assert {segments(m, "PID")[0][3].split("^")[0] for m in received} == {"MRN-7", "MRN-8"}
    assert settled(message_of(crashed)).status == settled(lost).status == MessageStatus.SENT


def test_the_interfaces_worker_does_not_load_the_model(interfaces):
    interfaces.start()
    log = Path(ARTIFACTS / f"worker-{interfaces.queue}.log").read_text()
    assert "ready." in log and "loaded on" not in log
    assert not AuditEvent.objects.filter(description="Inference worker started").exists()
    interfaces.close()

    # A worker that also consumes a draft queue loads it: the check above can fail.
    interfaces.start(queues=[f"drafts-{interfaces.queue}", interfaces.queue])
    log = Path(ARTIFACTS / f"worker-drafts-{interfaces.queue}.log").read_text()
    assert "loaded on" in log
    assert AuditEvent.objects.filter(description="Inference worker started").exists()
    redis.Redis.from_url(settings.REDIS_URL).delete(f"drafts-{interfaces.queue}")


def test_a_pending_message_is_sent_once_even_when_its_task_runs_twice(interfaces, radiologist):
    listener = interfaces.listener("AA")
    report = sign(written_report(radiologist, findings="Twice.", impression="Once."), radiologist)
    message = message_of(report)
    current_app.send_task(SEND_TASK, args=[message.pk], queue=interfaces.queue)  # the task, twice
    assert message_queue(report_id=report.pk, addendum_id=None).pk == message.pk  # no second message
    interfaces.start()
    assert settled(message).status == MessageStatus.SENT
    listener.wait_for(1)
    broker = redis.Redis.from_url(settings.REDIS_URL)
    wait_until(lambda: broker.llen(interfaces.queue) == 0, what="both tasks taken")
    time.sleep(1)  # the second has run (and found nothing to send)
    assert len(listener.received) == 1
