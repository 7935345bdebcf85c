"""What the Workers page shows: live workers, and per queue its depth, its oldest waiting
draft and whether any live worker serves it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import redis
from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from kombu.transport.redis import PRIORITY_STEPS, Channel

from medportal.celery import draft_queue
from medportal.operations.presence import (
    INDEX_KEY,
    WorkerReport,
    redis_client,
    redis_now,
    worker_key,
)
from medportal.reporting.models import Report, ReportStatus


def duration_text(seconds: float) -> str:
    """``45 s``, ``3 min 5 s``, ``2 h 4 min``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@dataclass
class WorkerStatus:
    report: WorkerReport
    last_seen_s: float
    warnings: list[str] = field(default_factory=list)

    @property
    def load_percent(self) -> int:
        return round(100 * self.report.active / self.report.capacity) if self.report.capacity else 0

    @property
    def last_seen_text(self) -> str:
        return f"{duration_text(self.last_seen_s)} ago"


@dataclass
class QueueStatus:
    name: str
    depth: int  # draft tasks waiting in the broker's list
    waiting: int  # reports whose draft was sent here and is not taken yet
    oldest_requested_at: datetime | None
    oldest_age_s: float | None
    models: list[str]  # models whose drafts the configuration routes here
    workers: list[str]  # live workers consuming it
    is_default: bool = False

    @property
    def has_work(self) -> bool:
        return self.depth > 0 or self.waiting > 0

    @property
    def unserved(self) -> bool:
        return self.has_work and not self.workers

    @property
    def oldest_age_text(self) -> str:
        return duration_text(self.oldest_age_s) if self.oldest_age_s is not None else ""


@dataclass
class FleetStatus:
    workers: list[WorkerStatus]
    queues: list[QueueStatus]
    draft_queue: str  # where a draft requested now goes
    warnings: list[str]


def workers_live(*, client: redis.Redis) -> list[WorkerStatus]:
    """Workers whose report has not expired, by name."""
    now = redis_now(client)
    names = [name.decode() for name in client.zrange(INDEX_KEY, 0, -1)]
    raws = client.mget([worker_key(name) for name in names]) if names else []
    workers = []
    for raw in raws:
        if raw is None:  # expired: the worker stopped reporting
            continue
        report = WorkerReport.from_json(raw)
        workers.append(WorkerStatus(report=report, last_seen_s=max(0.0, now - report.seen_at)))
    return sorted(workers, key=lambda worker: worker.report.name)


def queue_depth(*, client: redis.Redis, queue: str) -> int:
    """Messages waiting in a Celery queue on the Redis broker: kombu keeps one list per
    priority step (the queue's name, then the name + separator + step)."""
    keys = [f"{queue}{Channel.sep}{step}" if step else queue for step in PRIORITY_STEPS]
    with client.pipeline() as pipe:
        for key in keys:
            pipe.llen(key)
        return sum(pipe.execute())


def _waiting_reports() -> dict[str, tuple[int, datetime | None]]:
    """Per queue: reports queued for a draft there, and the earliest request among them.
    Reports queued before queues were recorded went to the default queue."""
    rows = (
        Report.objects.filter(status=ReportStatus.QUEUED)
        .values("draft_queue")
        .annotate(waiting=Count("pk"), oldest=Min("draft_requested_at"))
    )
    waiting: dict[str, tuple[int, datetime | None]] = {}
    for row in rows:
        queue = row["draft_queue"] or settings.CELERY_TASK_DEFAULT_QUEUE
        count, oldest = waiting.get(queue, (0, None))
        if row["oldest"] is not None and (oldest is None or row["oldest"] < oldest):
            oldest = row["oldest"]
        waiting[queue] = (count + row["waiting"], oldest)
    return waiting


def queues_status(*, client: redis.Redis, workers: list[WorkerStatus]) -> list[QueueStatus]:
    """Every queue worth showing: the default one, each pool's, each a live worker consumes
    and each that reports wait on; the default first, then by name."""
    default = settings.CELERY_TASK_DEFAULT_QUEUE
    routed: dict[str, list[str]] = {}
    for model, queue in settings.MEDPORTAL_MODEL_QUEUES.items():
        routed.setdefault(queue, []).append(model)
    waiting = _waiting_reports()
    names = {default, draft_queue(), *routed, *waiting}
    names.update(queue for worker in workers for queue in worker.report.queues)
    now = timezone.now()
    queues = []
    for name in sorted(names, key=lambda queue: (queue != default, queue)):
        count, oldest = waiting.get(name, (0, None))
        queues.append(
            QueueStatus(
                name=name,
                depth=queue_depth(client=client, queue=name),
                waiting=count,
                oldest_requested_at=oldest,
                oldest_age_s=(now - oldest).total_seconds() if oldest else None,
                models=routed.get(name, []),
                workers=[worker.report.name for worker in workers if name in worker.report.queues],
                is_default=name == default,
            )
        )
    return queues


def _worker_warnings(worker: WorkerStatus, model_queues: dict[str, str]) -> list[str]:
    report = worker.report
    warnings = []
    if report.state == "failed":
        warnings.append(f"Worker {report.name} could not load its model: {report.error}")
    for queue in report.queues:
        models = sorted(model for model, routed in model_queues.items() if routed == queue)
        if models and report.model not in models:
            warnings.append(
                f"Worker {report.name} consumes queue {queue}, meant for {', '.join(models)}, "
                f"but runs {report.model}: those drafts will be written by {report.model}."
            )
    return warnings


def fleet_status() -> FleetStatus:
    """Everything the Workers page shows, read now."""
    with redis_client() as client:
        workers = workers_live(client=client)
        queues = queues_status(client=client, workers=workers)
    warnings = []
    for queue in queues:
        if queue.unserved:
            drafts = max(queue.depth, queue.waiting)
            model = f" and MEDPORTAL_MODEL={' or '.join(queue.models)}" if queue.models else ""
            warnings.append(
                f"Queue {queue.name} has {drafts} draft{'s' if drafts != 1 else ''} waiting and no "
                f"live worker serves it: start a worker with -Q {queue.name}{model}."
            )
    for worker in workers:
        worker.warnings = _worker_warnings(worker, settings.MEDPORTAL_MODEL_QUEUES)
        warnings.extend(worker.warnings)
    return FleetStatus(workers=workers, queues=queues, draft_queue=draft_queue(), warnings=warnings)
