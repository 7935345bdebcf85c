"""Reading Celery's queues on the real Redis broker: what draft tasks wait in a queue."""

from __future__ import annotations

import base64
import json

import redis

from medportal.celery import DRAFT_TASK


def draft_args(client: redis.Redis, queue: str) -> list[list]:
    """The arguments (report id, attempt) of each draft task waiting in ``queue``, oldest first."""
    drafts = []
    for raw in reversed(client.lrange(queue, 0, -1)):  # kombu pushes on the left
        message = json.loads(raw)
        if message["headers"].get("task") == DRAFT_TASK:
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            drafts.append(args)
    return drafts
