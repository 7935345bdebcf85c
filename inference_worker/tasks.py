"""Celery tasks of the inference worker. Run it with:

    celery -A medportal worker --pool=prefork --concurrency=1

Prefork with one child per GPU: the model is loaded in the child after fork
(CUDA does not survive fork), once, and kept for every task.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_process_init, worker_process_shutdown

from medportal.celery import DRAFT_TASK

logger = logging.getLogger(__name__)
_publisher = None


def _get_publisher():
    global _publisher
    if _publisher is None:
        from medportal.streaming.publish import ReportPublisher

        _publisher = ReportPublisher()
    return _publisher


@worker_process_init.connect
def _load_model_in_child(**kwargs) -> None:
    from inference_worker.engine import ModelLoadError, get_engine

    try:
        get_engine()
    except ModelLoadError as exc:
        # Each draft will fail visibly with this reason (and retry loading).
        logger.error("%s", exc)


@worker_process_shutdown.connect
def _close_publisher(**kwargs) -> None:
    if _publisher is not None:
        _publisher.close()


@shared_task(name=DRAFT_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def draft_report(report_id: int, attempt: int) -> str:
    from inference_worker.drafting import draft_run
    from inference_worker.engine import get_engine

    return draft_run(
        report_id=report_id, attempt=attempt, engine_factory=get_engine, publisher=_get_publisher()
    )
