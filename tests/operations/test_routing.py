"""Routing drafts to GPU pools: MEDPORTAL_MODEL_QUEUES maps a model to its pool's queue, the
web server sends each draft to the queue of the model it drafts with, and the one-command
launcher's worker consumes the default queue (and its model's pool queue)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import redis
from django.conf import settings

from medportal.celery import draft_queue, model_queues_parse, queue_for_model, worker_queues
from medportal.imaging.ingest import IncomingFile
from medportal.intake.receive import studies_receive
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.services import drafts
from tests.conftest import dicom_bytes
from tests.e2e.conftest import ROOT
from tests.queues import draft_args


def test_the_mapping_reads_model_queue_pairs():
    assert model_queues_parse("") == {}
    assert model_queues_parse(" google/medgemma-4b-it=gpu-4b , google/medgemma-27b-it = gpu-27b,") == {
        "google/medgemma-4b-it": "gpu-4b",
        "google/medgemma-27b-it": "gpu-27b",
    }
    # A local path may hold "=": the queue is what follows the last one.
    assert model_queues_parse("/models/a=b=gpu.a_1") == {"/models/a=b": "gpu.a_1"}


@pytest.mark.parametrize("text", ["gpu-4b", "=gpu-4b", "model=", "model=gpu 4b", "model=-x"])
def test_a_bad_mapping_is_refused_with_the_pair_named(text):
    with pytest.raises(ValueError, match="is not 'model=queue'"):
        model_queues_parse(text)


def test_a_bad_mapping_stops_the_application_at_start_with_a_clear_message():
    env = dict(os.environ, MEDPORTAL_MODEL_QUEUES="tiny=gpu tiny", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "MEDPORTAL_MODEL_QUEUES: 'tiny=gpu tiny' is not 'model=queue'" in result.stderr


def test_a_model_without_a_pool_goes_to_the_default_queue():
    pools = {"big": "gpu-27b"}
    assert queue_for_model("big", model_queues=pools, default="medportal") == "gpu-27b"
    assert queue_for_model("small", model_queues=pools, default="medportal") == "medportal"


def test_the_draft_queue_follows_the_site_model(settings):
    settings.MEDPORTAL_MODEL_QUEUES = {"tiny": "gpu-tiny"}
    settings.MEDPORTAL_MODEL = "tiny"
    assert draft_queue() == "gpu-tiny"
    assert draft_queue("google/medgemma-4b-it") == settings.CELERY_TASK_DEFAULT_QUEUE


def test_the_launchers_worker_consumes_the_default_queue_and_its_models_pool():
    assert worker_queues({}) == ["medportal"]
    assert worker_queues({"MEDPORTAL_QUEUE": "site"}) == ["site"]
    pools = "tiny=gpu-tiny,google/medgemma-27b-it=gpu-27b"
    assert worker_queues({"MEDPORTAL_MODEL": "tiny", "MEDPORTAL_MODEL_QUEUES": pools}) == [
        "medportal",
        "gpu-tiny",
    ]
    # google/medgemma-4b-it, the default model, has no pool here.
    assert worker_queues({"MEDPORTAL_MODEL_QUEUES": pools}) == ["medportal"]


@pytest.fixture
def pool_queue():
    queue = f"gpu-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client, queue
    client.delete(queue)
    client.close()


@pytest.mark.django_db
def test_a_draft_for_the_configured_model_lands_in_its_pools_queue(
    pool_queue, radiologist, settings, django_capture_on_commit_callbacks
):
    client, queue = pool_queue
    settings.MEDPORTAL_MODEL = "tiny"
    settings.MEDPORTAL_MODEL_QUEUES = {"tiny": queue}
    default_before = client.llen(settings.CELERY_TASK_DEFAULT_QUEUE)
    _, (report,) = studies_receive(
        files=[IncomingFile("CT_small.dcm", dicom_bytes("CT_small.dcm"))],
        uploader=radiologist,
        auto_draft=False,
    )
    with django_capture_on_commit_callbacks(execute=True):
        drafts.draft_request(report=report, user=radiologist)

    assert draft_args(client, queue) == [[report.pk, 1]]
    assert client.llen(settings.CELERY_TASK_DEFAULT_QUEUE) == default_before
    stored = Report.objects.get(pk=report.pk)
    assert (stored.status, stored.draft_queue) == (ReportStatus.QUEUED, queue)
