"""What a worker reports about itself, and where the report lives in Redis.

Why a report pushed into Redis, not Celery's remote control (``inspect``): the workers
run without heartbeat, gossip and mingle (less chatter in the process that generates),
and ``inspect`` broadcasts and then waits a fixed time for replies from an unknown
number of workers: every poll of the page would stall for that time, and a worker whose
generation holds the GIL past the deadline would look dead. Instead each worker process
that drafts writes one small JSON key every few seconds (``inference_worker.presence``)
with an expiry of three periods: a key that exists is a live worker, reading them is a
few non-blocking commands, and it works whatever the pool or broker settings are. Times
come from the Redis server's clock, so hosts with skewed clocks still agree on "last seen".
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import redis
from django.conf import settings

INDEX_KEY = "medportal:workers"  # sorted set: worker name -> when it last reported
KEY_PREFIX = "medportal:worker:"  # one JSON report per worker, expiring


@dataclass
class WorkerReport:
    name: str  # Celery's node name (celery@host), with the process id for a prefork child
    host: str
    pid: int
    pool: str  # thread, prefork, solo
    queues: list[str]
    model: str
    engine: str
    state: str  # loading, ready, failed (the model could not be loaded), stopping
    capacity: int  # drafts it runs at once
    active: int = 0  # drafts in progress
    device: str = ""  # "cpu", "cuda (NVIDIA H100 80GB HBM3)"; empty until the model is loaded
    # "gpu": memory this process holds on its GPU (torch's allocator), of the GPU's total, and
    # what the whole GPU has in use (other processes too); "rss": the process's resident memory.
    memory_kind: str = "rss"
    memory_used_bytes: int = 0
    memory_total_bytes: int | None = None
    device_used_bytes: int | None = None
    error: str = ""
    started_at: float = 0.0
    seen_at: float = 0.0  # Redis server time of the last report

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> WorkerReport:
        """Tolerates fields it does not know (a newer worker during a rolling upgrade)."""
        data = json.loads(raw)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def worker_key(name: str) -> str:
    return KEY_PREFIX + name


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def redis_now(client: redis.Redis) -> float:
    seconds, microseconds = client.time()
    return seconds + microseconds / 1_000_000
