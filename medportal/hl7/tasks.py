"""Celery tasks of the interfaces worker (queue MEDPORTAL_INTERFACES_QUEUE, no model):

    celery -A medportal worker --pool=threads --concurrency=2 -Q interfaces -B

``-B`` runs the outbox sweep every MEDPORTAL_HL7_SWEEP_SECONDS (run one such worker with -B).
"""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from medportal.hl7.services import SEND_TASK, SWEEP_TASK, message_deliver, outbox_sweep


# Attempts and their backoff are counted on the message (it outlives any one task: the sweep
# and a resend start new ones), so Celery's own retry count is not the limit.
@shared_task(
    bind=True,
    name=SEND_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
)
def send_message(self, message_id: int) -> None:
    delay = message_deliver(message_id=message_id)
    if delay is not None:
        raise self.retry(countdown=delay, queue=settings.MEDPORTAL_INTERFACES_QUEUE)


@shared_task(name=SWEEP_TASK, ignore_result=True)
def sweep_outbox() -> int:
    return outbox_sweep()


@worker_ready.connect
def _sweep_at_start(sender=None, **kwargs) -> None:
    # A worker that was down may have missed messages: look at once, not a sweep interval later.
    queues = sender.app.amqp.queues.consume_from if sender is not None else {}
    if settings.MEDPORTAL_INTERFACES_QUEUE in (queues or {}):
        sweep_outbox.apply_async(queue=settings.MEDPORTAL_INTERFACES_QUEUE)
