"""The Celery application. The web process only enqueues tasks by name; the
worker process (``inference_worker``) registers and runs them."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medportal.settings")

app = Celery("medportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Every worker registers every task; the queues it consumes decide what it runs (and
# inference_worker.tasks loads the model only in a worker that may take drafts).
app.conf.imports = ("inference_worker.tasks", "medportal.hl7.tasks")

DRAFT_TASK = "inference_worker.draft_report"
