"""Writing workers' reports (called by the worker processes, ``inference_worker.presence``)."""

from __future__ import annotations

import redis

from medportal.operations.presence import INDEX_KEY, WorkerReport, redis_now, worker_key

# Names that have not reported for this long leave the index (their keys expired long ago).
_INDEX_KEEP_S = 24 * 3600


def worker_presence_record(*, client: redis.Redis, report: WorkerReport, ttl_s: float) -> WorkerReport:
    """Store ``report`` as the worker's current state; it counts as live for ``ttl_s``."""
    if ttl_s <= 0:
        raise ValueError("a worker report needs a positive time to live")
    report.seen_at = redis_now(client)
    with client.pipeline() as pipe:
        pipe.set(worker_key(report.name), report.to_json(), px=int(ttl_s * 1000))
        pipe.zadd(INDEX_KEY, {report.name: report.seen_at})
        pipe.zremrangebyscore(INDEX_KEY, "-inf", report.seen_at - _INDEX_KEEP_S)
        pipe.execute()
    return report


def worker_presence_clear(*, client: redis.Redis, name: str) -> None:
    """A worker that stops says so at once, instead of lingering until its report expires."""
    with client.pipeline() as pipe:
        pipe.delete(worker_key(name))
        pipe.zrem(INDEX_KEY, name)
        pipe.execute()
