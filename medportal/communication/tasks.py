"""Celery tasks of the interfaces worker (its queue, MEDPORTAL_INTERFACES_QUEUE; no model):
the critical-result e-mails and the sweep that escalates and resends (with ``-B``)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from medportal.communication.critical import SEND_TASK, SWEEP_TASK, critical_email_deliver, critical_sweep
from medportal.communication.followups import followups_flag_overdue


@shared_task(
    bind=True,
    name=SEND_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
)
def send_critical_email(self, critical_id: int) -> None:
    delay = critical_email_deliver(critical_id=critical_id)
    if delay is not None:
        raise self.retry(countdown=delay, queue=settings.MEDPORTAL_INTERFACES_QUEUE)


@shared_task(name=SWEEP_TASK, ignore_result=True)
def sweep() -> None:
    critical_sweep()
    followups_flag_overdue()
