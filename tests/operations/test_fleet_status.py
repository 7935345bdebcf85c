"""Workers' reports in the real Redis, and what the Workers page makes of them: live
workers, queue depths, the oldest waiting draft per queue, and the warnings."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
import redis
from celery import current_app
from django.conf import settings
from django.utils import timezone

from medportal.celery import DRAFT_TASK
from medportal.imaging.ingest import IncomingFile
from medportal.intake.receive import studies_receive
from medportal.operations.presence import INDEX_KEY, WorkerReport, worker_key
from medportal.operations.selectors import (
    duration_text,
    fleet_status,
    queue_depth,
    queues_status,
    workers_live,
)
from medportal.operations.services import worker_presence_clear, worker_presence_record
from medportal.reporting.models import Report, ReportStatus
from tests.conftest import dicom_bytes


@pytest.fixture
def client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def names(client):
    """Unique worker and queue names; whatever a test leaves under them is removed."""
    suffix = uuid.uuid4().hex[:8]
    made = {"worker": f"celery@test-{suffix}", "queue": f"gpu-test-{suffix}", "other": f"other-{suffix}"}
    yield made
    worker_presence_clear(client=client, name=made["worker"])
    client.delete(made["queue"], made["other"], *(f"{made['queue']}\x06\x16{step}" for step in (3, 6, 9)))


def a_report(name: str, queues: list[str], **fields) -> WorkerReport:
    values = dict(
        name=name, host="gpu-host-1", pid=4321, pool="thread", queues=queues, model="tiny",
        engine="transformers", state="ready", capacity=4, active=1, device="cpu",
        memory_used_bytes=300 * 1024 * 1024,
    )  # fmt: skip
    return WorkerReport(**{**values, **fields})


def live_names(client) -> set[str]:
    return {worker.report.name for worker in workers_live(client=client)}


def test_a_recorded_worker_is_live_until_it_clears_its_report(client, names):
    worker_presence_record(client=client, report=a_report(names["worker"], [names["queue"]]), ttl_s=30)

    (worker,) = [w for w in workers_live(client=client) if w.report.name == names["worker"]]
    assert worker.report == a_report(names["worker"], [names["queue"]], seen_at=worker.report.seen_at)
    assert 0 <= worker.last_seen_s < 5
    assert worker.load_percent == 25

    worker_presence_clear(client=client, name=names["worker"])
    assert names["worker"] not in live_names(client)
    assert client.zscore(INDEX_KEY, names["worker"]) is None


def test_a_worker_that_stops_reporting_drops_off_when_its_report_expires(client, names):
    worker_presence_record(client=client, report=a_report(names["worker"], [names["queue"]]), ttl_s=0.5)
    assert names["worker"] in live_names(client)
    time.sleep(0.8)
    assert names["worker"] not in live_names(client)


def test_last_seen_counts_from_the_last_report(client, names):
    worker_presence_record(client=client, report=a_report(names["worker"], [names["queue"]]), ttl_s=30)
    time.sleep(1.2)
    (worker,) = [w for w in workers_live(client=client) if w.report.name == names["worker"]]
    assert worker.last_seen_s >= 1.0
    assert worker.last_seen_text == "1 s ago"


def test_a_report_from_a_newer_worker_with_more_fields_is_still_read(client, names):
    report = a_report(names["worker"], [names["queue"]])
    raw = report.to_json()[:-1] + ', "a_later_field": 1}'
    client.set(worker_key(report.name), raw, ex=30)
    client.zadd(INDEX_KEY, {report.name: time.time()})
    assert names["worker"] in live_names(client)


def test_a_report_needs_a_positive_time_to_live(client, names):
    with pytest.raises(ValueError):
        worker_presence_record(client=client, report=a_report(names["worker"], []), ttl_s=0)


def test_the_depth_counts_every_priority_list_of_a_queue(client, names):
    queue = names["queue"]
    assert queue_depth(client=client, queue=queue) == 0
    current_app.send_task(DRAFT_TASK, args=[0, 0], queue=queue)
    current_app.send_task(DRAFT_TASK, args=[0, 0], queue=queue, priority=5)
    assert client.llen(queue) == 1  # the other went to the list of its priority step
    assert queue_depth(client=client, queue=queue) == 2


def queued_report(user, *, queue: str, requested_ago: timedelta, dicom: str = "CT_small.dcm") -> Report:
    _, (report,) = studies_receive(
        files=[IncomingFile(dicom, dicom_bytes(dicom))],
        uploader=user,
        auto_draft=False,
    )
    # A report as draft_request leaves it, but requested a while ago.
    Report.objects.filter(pk=report.pk).update(
        status=ReportStatus.QUEUED, attempt=1, draft_queue=queue,
        draft_requested_at=timezone.now() - requested_ago,
    )  # fmt: skip
    return report


def by_name(queues):
    return {queue.name: queue for queue in queues}


@pytest.mark.django_db
def test_each_queue_shows_its_depth_its_oldest_waiting_draft_and_who_serves_it(
    client, names, radiologist, settings
):
    queue, other = names["queue"], names["other"]
    settings.MEDPORTAL_MODEL_QUEUES = {"big-model": queue}
    queued_report(radiologist, queue=queue, requested_ago=timedelta(minutes=3, seconds=5))
    queued_report(radiologist, queue=queue, requested_ago=timedelta(seconds=20), dicom="MR_small.dcm")
    current_app.send_task(DRAFT_TASK, args=[0, 0], queue=queue)
    worker_presence_record(client=client, report=a_report(names["worker"], [other]), ttl_s=30)

    workers = workers_live(client=client)
    queues = by_name(queues_status(client=client, workers=workers))

    pool = queues[queue]
    assert (pool.depth, pool.waiting, pool.models, pool.workers) == (1, 2, ["big-model"], [])
    assert 185 <= pool.oldest_age_s < 200
    assert pool.oldest_age_text.startswith("3 min ")
    assert pool.unserved
    served = queues[other]  # listed because a live worker consumes it
    assert (served.depth, served.waiting, served.workers) == (0, 0, [names["worker"]])
    assert not served.unserved and served.oldest_age_s is None
    default = next(iter(queues.values()))
    assert default.is_default and default.name == settings.CELERY_TASK_DEFAULT_QUEUE

    status = fleet_status()
    (warning,) = [w for w in status.warnings if queue in w]
    assert warning == (
        f"Queue {queue} has 2 drafts waiting and no live worker serves it: "
        f"start a worker with -Q {queue} and MEDPORTAL_MODEL=big-model."
    )

    worker_presence_record(
        client=client, report=a_report(names["worker"], [other, queue], model="big-model"), ttl_s=30
    )
    assert not by_name(fleet_status().queues)[queue].unserved
    assert not [w for w in fleet_status().warnings if queue in w]


@pytest.mark.django_db
def test_reports_queued_before_queues_were_recorded_count_on_the_default_queue(client, radiologist):
    queued_report(radiologist, queue="", requested_ago=timedelta(hours=2, minutes=1))
    default = by_name(queues_status(client=client, workers=[]))[settings.CELERY_TASK_DEFAULT_QUEUE]
    assert default.waiting == 1
    assert default.oldest_age_text == "2 h 1 min"


@pytest.mark.django_db
def test_a_worker_on_a_pool_queue_running_another_model_is_flagged(client, names, settings):
    settings.MEDPORTAL_MODEL_QUEUES = {"google/medgemma-27b-it": names["queue"]}
    worker_presence_record(
        client=client, report=a_report(names["worker"], [names["queue"]], model="tiny"), ttl_s=30
    )
    (worker,) = [w for w in fleet_status().workers if w.report.name == names["worker"]]
    assert worker.warnings == [
        f"Worker {names['worker']} consumes queue {names['queue']}, meant for google/medgemma-27b-it, "
        "but runs tiny: those drafts will be written by tiny."
    ]


@pytest.mark.django_db
def test_a_worker_whose_model_failed_to_load_is_flagged(client, names):
    failed = a_report(names["worker"], ["x"], state="failed", error="could not load model 'm'", device="")
    worker_presence_record(client=client, report=failed, ttl_s=30)
    assert f"Worker {names['worker']} could not load its model: could not load model 'm'" in (
        fleet_status().warnings
    )


def test_durations_read_naturally():
    assert [duration_text(s) for s in (-1, 0, 59.9, 60, 185, 3600, 7322)] == [
        "0 s", "0 s", "59 s", "1 min 0 s", "3 min 5 s", "1 h 0 min", "2 h 2 min",
    ]  # fmt: skip
