"""The Celery application. The web process only enqueues tasks by name; the
worker process (``inference_worker``) registers and runs them.

Routing: drafts go to the queue of the GPU pool that serves the draft's model
(``MEDPORTAL_MODEL_QUEUES``, e.g. ``google/medgemma-27b-it=gpu-27b``), else to the
default queue (``MEDPORTAL_QUEUE``). A pool is the workers started with ``-Q <its
queue>`` and that model; Celery's broker hands each draft to one of them.
"""

from __future__ import annotations

import os
import re

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medportal.settings")

app = Celery("medportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Every worker registers every task; the queues it consumes decide what it runs (and
# inference_worker.tasks loads the model only in a worker that may take drafts).
app.conf.imports = (
    "inference_worker.tasks",
    "medportal.hl7.tasks",
    "medportal.communication.tasks",
    "medportal.audit.tasks",
    "medportal.reporting.tasks",
)

DRAFT_TASK = "inference_worker.draft_report"
TRANSCRIBE_TASK = "inference_worker.transcribe_audio"
AUDIO_SWEEP_TASK = "inference_worker.audio_sweep"
IMPRESSION_TASK = "inference_worker.impression_from_findings"
DEFAULT_QUEUE = "medportal"

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def model_queues_parse(text: str) -> dict[str, str]:
    """``model=queue`` pairs, comma separated (``MEDPORTAL_MODEL_QUEUES``), as a mapping.

    Raises ValueError naming the pair that is not ``model=queue`` or whose queue name is
    not plain letters, digits, ``.``, ``_`` and ``-``."""
    mapping: dict[str, str] = {}
    for pair in (item.strip() for item in text.split(",")):
        if not pair:
            continue
        model, sep, queue = (part.strip() for part in pair.rpartition("="))
        if not sep or not model or not _QUEUE_NAME.match(queue):
            raise ValueError(
                f"{pair!r} is not 'model=queue' (a queue name is letters, digits, '.', '_' and '-')"
            )
        mapping[model] = queue
    return mapping


def queue_for_model(model: str, *, model_queues: dict[str, str], default: str) -> str:
    """The queue whose workers run ``model``; the default queue for a model no pool claims."""
    return model_queues.get(model, default)


def draft_queue(model: str | None = None) -> str:
    """The queue a draft by ``model`` (the site's MEDPORTAL_MODEL unless given) is sent to."""
    from django.conf import settings

    return queue_for_model(
        model or settings.MEDPORTAL_MODEL,
        model_queues=settings.MEDPORTAL_MODEL_QUEUES,
        default=settings.CELERY_TASK_DEFAULT_QUEUE,
    )


def worker_queues(env: dict[str, str]) -> list[str]:
    """The queues a worker started from ``env`` consumes when none are named: the default
    queue (nothing sent there waits for ever) and its own model's pool queue, if any."""
    default = env.get("MEDPORTAL_QUEUE") or DEFAULT_QUEUE
    own = queue_for_model(
        env.get("MEDPORTAL_MODEL") or "google/medgemma-1.5-4b-it",
        model_queues=model_queues_parse(env.get("MEDPORTAL_MODEL_QUEUES", "")),
        default=default,
    )
    return list(dict.fromkeys([default, own]))
