"""Celery tasks of the inference worker. Run it with:

    celery -A medportal worker --pool=threads --concurrency=4

One worker process per GPU holds the model once, and runs up to ``--concurrency``
drafts at the same time (set it to MEDPORTAL_BATCH_SIZE): the drafts waiting for the
model are generated together in one batch (``engines.batching``), each still streamed
to its own report group with its own sequence numbers.

Why the threads pool: the drafts must share one model in one process. Prefork gives
each child its own copy of the model (N times the GPU memory, no batching between them);
threads share the process's engine. The GIL costs little on a GPU, where the time goes
to the model (torch releases the GIL) and to waiting on the database and Redis; on the
tiny CPU model it shows (bench/concurrency.py: pipeline/engine tokens/s). The
threads pool never forks, so the model is loaded in the worker's main process at
start-up (``worker_init``; ``worker_process_init`` does not fire for threads). Prefork
with ``--concurrency=1`` still works: the model then loads in the child after fork.

Long GPU tasks: late acknowledgement (a task is acknowledged when its draft has ended),
prefetch multiplier 1 (the worker reserves one task per thread, so no study waits behind
a busy worker while another is idle). A worker asked to stop (SIGTERM: warm shutdown)
takes no new task and waits for its running drafts to finish (tests/e2e/
test_worker_shutdown.py). The price of threads: when the whole process dies (killed by
the kernel, a segfault) its unacknowledged drafts come back only after Redis's visibility
timeout (MEDPORTAL_VISIBILITY_TIMEOUT), where prefork's parent requeues a lost child's
task at once (reject_on_worker_lost; tests/e2e/test_faults.py runs that pool).
"""

from __future__ import annotations

import logging
import threading

from celery import shared_task
from celery.signals import (
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)

from inference_worker import presence
from medportal.celery import AUDIO_SWEEP_TASK, DRAFT_TASK, IMPRESSION_TASK, TRANSCRIBE_TASK

logger = logging.getLogger(__name__)

# One publisher per task thread: each owns a private event loop and its connections.
_local = threading.local()
_publishers: list = []
_publishers_lock = threading.Lock()


def _get_publisher():
    publisher = getattr(_local, "publisher", None)
    if publisher is None:
        from medportal.streaming.publish import ReportPublisher

        publisher = _local.publisher = ReportPublisher()
        with _publishers_lock:
            _publishers.append(publisher)
    return publisher


def _get_channel_publisher():
    publisher = getattr(_local, "channel_publisher", None)
    if publisher is None:
        from medportal.dictation.publish import ChannelPublisher

        publisher = _local.channel_publisher = ChannelPublisher()
        with _publishers_lock:
            _publishers.append(publisher)
    return publisher


def _load_model() -> None:
    from inference_worker.engines.loading import ModelLoadError, get_engine

    try:
        get_engine()
    except ModelLoadError as exc:
        # Each draft will fail visibly with this reason (and retry loading).
        logger.error("%s", exc)
        presence.model_failed(str(exc))


def _takes_drafts(app) -> bool:
    """Whether this worker may take drafts, and so needs the model: every worker registers every
    task, but one that consumes nothing but the interfaces queue (HL7) never loads it."""
    from django.conf import settings

    consumed = set(app.amqp.queues.consume_from or ())
    return not consumed or bool(
        consumed - {settings.MEDPORTAL_INTERFACES_QUEUE, settings.MEDPORTAL_ASR_QUEUE}
    )


def _takes_dictation(app) -> bool:
    """Whether this worker consumes the dictation queue, and so needs the speech model."""
    from django.conf import settings

    return settings.MEDPORTAL_ASR_QUEUE in set(app.amqp.queues.consume_from or ())


def _load_speech_model() -> None:
    from inference_worker.asr import get_asr_engine
    from inference_worker.engines.base import ModelLoadError

    try:
        get_asr_engine()
    except ModelLoadError as exc:
        # Each piece of dictation fails at once with this reason (and loading is tried again).
        logger.error("%s", exc)


def _forks(pool_cls) -> bool:
    from celery import concurrency
    from celery.concurrency.prefork import TaskPool as PreforkPool

    pool = concurrency.get_implementation(pool_cls) if isinstance(pool_cls, str) else pool_cls
    return isinstance(pool, type) and issubclass(pool, PreforkPool)


@worker_init.connect
def _name_the_actor(sender=None, **kwargs) -> None:
    # Audit events this process writes without a user (the study it reads for a draft, the
    # draft it writes, a message it sends) name it: "worker:celery@gpu1", "worker:interfaces@host".
    from medportal.audit.actors import process_actor_set

    if sender is not None:
        process_actor_set(f"worker:{sender.hostname}")


@worker_init.connect
def _load_model_at_start(sender=None, **kwargs) -> None:
    # The threads (and solo) pools run tasks in this process: load now, before "ready".
    # Prefork runs them in children: load there, after fork (CUDA does not survive fork).
    # The report for the Workers page starts where the model lives, before it loads.
    if sender is None:
        return
    if _takes_dictation(sender.app) and not _forks(sender.pool_cls):
        _load_speech_model()
    if not _takes_drafts(sender.app):
        return
    presence.worker_facts_record(sender)
    if not _forks(sender.pool_cls):
        presence.reporter_start()
        _load_model()


@worker_process_init.connect
def _load_model_in_child(sender=None, **kwargs) -> None:
    from medportal.celery import app

    # Prefork's pool processes (and the solo pool's, which is the main process: started above).
    if _takes_dictation(app):
        _load_speech_model()
    if _takes_drafts(app):
        presence.reporter_start(child_hostname=sender)
        _load_model()


@worker_shutting_down.connect
def _report_stopping(**kwargs) -> None:
    presence.stopping()


@worker_shutdown.connect
@worker_process_shutdown.connect
def _stop_reporting(**kwargs) -> None:
    presence.reporter_stop()


@worker_ready.connect
def _audit_start(sender=None, **kwargs) -> None:
    from medportal.audit.services import audit_application

    if sender is not None and not _takes_drafts(sender.app):
        return
    audit_application(
        description="Inference worker started", detail={"hostname": getattr(sender, "hostname", "")}
    )


@worker_shutdown.connect
def _audit_stop(sender=None, **kwargs) -> None:
    from medportal.audit.services import audit_application

    if sender is not None and not _takes_drafts(sender.app):
        return
    audit_application(
        description="Inference worker stopped", detail={"hostname": getattr(sender, "hostname", "")}
    )


@worker_shutdown.connect  # after the pool has stopped: running drafts are finished
@worker_process_shutdown.connect  # a prefork child
def _close_publishers(**kwargs) -> None:
    with _publishers_lock:
        for publisher in _publishers:
            publisher.close()
        _publishers.clear()


@shared_task(name=DRAFT_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def draft_report(report_id: int, attempt: int) -> str:
    from inference_worker.drafting import draft_run
    from inference_worker.engines.loading import get_engine

    with presence.drafting():
        return draft_run(
            report_id=report_id, attempt=attempt, engine_factory=get_engine, publisher=_get_publisher()
        )


# Dictation: short tasks on their own queue (MEDPORTAL_ASR_QUEUE), acknowledged when done; a
# piece lost with its worker is lost (the radiologist sees no text and says it again).
@shared_task(name=TRANSCRIBE_TASK, ignore_result=True)
def transcribe_audio(report_id: int, user_id: int, name: str, seq: int, reply_to: str) -> str:
    from inference_worker.asr import get_asr_engine
    from inference_worker.dictation import dictation_transcribe

    return dictation_transcribe(
        report_id=report_id, user_id=user_id, name=name, seq=seq, reply_to=reply_to,
        engine_factory=get_asr_engine, publisher=_get_channel_publisher(),
    )  # fmt: skip


@shared_task(name=AUDIO_SWEEP_TASK, ignore_result=True)
def audio_sweep() -> int:
    from medportal.dictation.audio import audio_sweep as sweep

    return sweep()


# The Impression from the Findings: on the drafting queue, by the drafting model.
@shared_task(name=IMPRESSION_TASK, ignore_result=True)
def impression_from_findings(report_id: int, user_id: int, findings: str, reply_to: str) -> str:
    from inference_worker.dictation import impression_run
    from inference_worker.engines.loading import get_engine

    with presence.drafting():
        return impression_run(
            report_id=report_id, user_id=user_id, findings=findings, reply_to=reply_to,
            engine_factory=get_engine, publisher=_get_channel_publisher(),
        )  # fmt: skip
