"""The worker's own report for the Workers page: its model, device, memory, load and queues,
written to Redis every MEDPORTAL_WORKER_REPORT_SECONDS from a daemon thread
(``medportal.operations.presence`` says why a push, not Celery's ``inspect``).

It runs in the process that holds the model and runs the drafts: the worker's main process
for the threads and solo pools (started at ``worker_init``, so the page shows the model
loading), each pool process for prefork (started at ``worker_process_init``; each is a
worker of capacity 1 there). The thread only reads and writes Redis, never the database.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

logger = logging.getLogger(__name__)


@dataclass
class WorkerFacts:
    """What the worker's main process knows at ``worker_init`` (inherited by forked children)."""

    hostname: str
    pool: str
    queues: list[str]
    concurrency: int


_facts: WorkerFacts | None = None
_reporter: Reporter | None = None
_reporter_pid: int | None = None
_active = 0
_active_lock = threading.Lock()
_load_error = ""
_stopping = False


def worker_facts_record(sender) -> WorkerFacts:
    """Remember the worker's name, pool, queues and concurrency (``worker_init``'s sender)."""
    global _facts
    pool_cls = sender.pool_cls
    pool = pool_cls if isinstance(pool_cls, str) else pool_cls.__module__.rsplit(".", 1)[-1]
    queues = sorted(sender.app.amqp.queues.consume_from)
    _facts = WorkerFacts(
        hostname=sender.hostname, pool=pool, queues=queues, concurrency=int(sender.concurrency or 1)
    )
    return _facts


@contextmanager
def drafting() -> Iterator[None]:
    """Counts a draft in progress in this process for as long as it runs."""
    global _active
    with _active_lock:
        _active += 1
    _report_now()
    try:
        yield
    finally:
        with _active_lock:
            _active -= 1
        _report_now()


def _report_now() -> None:
    """The load changed: report it at once, not at the next interval (a short draft would
    otherwise start and end unseen between two reports)."""
    if _reporter is not None and _reporter_pid == os.getpid():
        _reporter.wake()


def model_failed(reason: str) -> None:
    global _load_error
    _load_error = reason


def stopping() -> None:
    """Warm shutdown began: no new drafts, the running ones finish."""
    global _stopping
    _stopping = True


def _device_and_memory(device: str) -> dict:
    import psutil

    facts = {"device": device, "memory_kind": "rss", "memory_used_bytes": psutil.Process().memory_info().rss}
    if device.startswith("cuda"):
        import torch

        # Read GPU memory only where this process already holds a CUDA context (the transformers
        # engine). vLLM runs its model in a process of its own: asking from here would create a
        # context (hundreds of MB of GPU memory) just to report; its worker shows resident memory.
        if torch.cuda.is_initialized():
            free, total = torch.cuda.mem_get_info()
            facts = {
                "device": f"cuda ({torch.cuda.get_device_name()})",
                "memory_kind": "gpu",
                "memory_used_bytes": int(torch.cuda.memory_reserved()),
                "memory_total_bytes": int(total),
                "device_used_bytes": int(total - free),
            }
    return facts


def current_report(*, name: str, queues: list[str], capacity: int, pool: str, started_at: float):
    """This process's report as of now."""
    from django.conf import settings

    from inference_worker.engines.loading import loaded_engine
    from medportal.operations.presence import WorkerReport

    engine = loaded_engine()
    state = "ready" if engine is not None else ("failed" if _load_error else "loading")
    if _stopping:
        state = "stopping"
    report = WorkerReport(
        name=name,
        host=socket.gethostname(),
        pid=os.getpid(),
        pool=pool,
        queues=queues,
        model=settings.MEDPORTAL_MODEL,
        engine=settings.MEDPORTAL_ENGINE,
        state=state,
        capacity=capacity,
        active=_active,
        error=_load_error if engine is None else "",
        started_at=started_at,
    )
    # The device is not known until the model is loaded.
    for key, value in _device_and_memory(engine.device if engine is not None else "").items():
        setattr(report, key, value)
    return report


class Reporter(threading.Thread):
    def __init__(self, *, name: str, queues: list[str], capacity: int, pool: str, interval_s: float):
        super().__init__(name="worker-report", daemon=True)
        self.worker_name = name
        self.fields = {"name": name, "queues": queues, "capacity": capacity, "pool": pool}
        self.interval_s = interval_s
        self.started_at = time.time()
        self._stop_event = threading.Event()
        self._wake_event = threading.Event()
        self._failing = False

    def wake(self) -> None:
        self._wake_event.set()

    def report_once(self) -> None:
        from medportal.operations.presence import redis_client
        from medportal.operations.services import worker_presence_record

        report = current_report(**self.fields, started_at=self.started_at)
        with redis_client() as client:
            worker_presence_record(client=client, report=report, ttl_s=3 * self.interval_s)

    def run(self) -> None:
        while True:
            try:
                self.report_once()
                if self._failing:
                    logger.info("worker report: Redis reachable again")
                self._failing = False
            except (redis.RedisError, OSError) as exc:
                if not self._failing:  # once per outage, not every few seconds
                    logger.warning("worker report: cannot reach Redis (%s); retrying", exc)
                self._failing = True
            except Exception:  # never let the report take the worker down
                logger.exception("worker report failed")
            self._wake_event.wait(self.interval_s)
            self._wake_event.clear()
            if self._stop_event.is_set():
                return

    def stop(self) -> None:
        """Stop reporting and remove the report, so the worker leaves the page at once."""
        from medportal.operations.presence import redis_client
        from medportal.operations.services import worker_presence_clear

        self._stop_event.set()
        self._wake_event.set()
        self.join(timeout=10)
        try:
            with redis_client() as client:
                worker_presence_clear(client=client, name=self.worker_name)
        except (redis.RedisError, OSError) as exc:
            logger.warning("worker report: could not remove it (%s); it expires by itself", exc)


def reporter_start(*, child_hostname: str | None = None) -> Reporter | None:
    """Start reporting from this process, once. ``child_hostname``: a prefork pool process,
    named after its worker and its own process id, capacity 1."""
    global _reporter, _reporter_pid
    from django.conf import settings

    if _facts is None or _reporter_pid == os.getpid():
        return _reporter if _reporter_pid == os.getpid() else None
    if child_hostname is not None:
        name, capacity = f"{child_hostname}/{os.getpid()}", 1
    else:
        name, capacity = _facts.hostname, _facts.concurrency
    _reporter = Reporter(
        name=name,
        queues=_facts.queues,
        capacity=capacity,
        pool=_facts.pool,
        interval_s=settings.MEDPORTAL_WORKER_REPORT_SECONDS,
    )
    _reporter_pid = os.getpid()
    _reporter.start()
    return _reporter


def reporter_stop() -> None:
    global _reporter, _reporter_pid
    if _reporter is not None and _reporter_pid == os.getpid():
        _reporter.stop()
    _reporter = _reporter_pid = None
