"""The worker's report for the Workers page, written by its real reporting thread into the
real Redis (the end-to-end test tests/e2e/test_workers_page.py runs it in real workers)."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
import redis
from django.conf import settings

from inference_worker import presence
from medportal.operations.presence import WorkerReport, worker_key


@pytest.fixture
def client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def reporter(client):
    name = f"celery@unit-{uuid.uuid4().hex[:8]}"
    reporter = presence.Reporter(name=name, queues=["gpu-tiny"], capacity=3, pool="thread", interval_s=1)
    yield reporter
    presence.model_failed("")
    if reporter.is_alive():
        reporter.stop()
    client.delete(worker_key(name))


def stored(client, name: str) -> WorkerReport | None:
    raw = client.get(worker_key(name))
    return WorkerReport.from_json(raw) if raw is not None else None


def wait_for(condition, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail("timed out")


def test_the_thread_reports_this_process_and_its_drafts_in_progress(client, reporter):
    reporter.start()
    report = wait_for(lambda: stored(client, reporter.worker_name))
    assert (report.queues, report.capacity, report.pool, report.model) == (["gpu-tiny"], 3, "thread", "tiny")
    assert report.state == "loading"  # no model in this process yet
    assert (report.device, report.memory_kind, report.active) == ("", "rss", 0)
    assert report.memory_used_bytes > 50 * 2**20  # this test process, with torch imported
    # Refreshed every period, expiring after three.
    assert 1000 < client.pttl(worker_key(reporter.worker_name)) <= 3000

    release = threading.Event()

    def a_draft():
        with presence.drafting():
            release.wait(10)

    drafts = [threading.Thread(target=a_draft) for _ in range(2)]
    for draft in drafts:
        draft.start()
    assert wait_for(lambda: stored(client, reporter.worker_name).active == 2)
    release.set()
    for draft in drafts:
        draft.join()
    assert wait_for(lambda: stored(client, reporter.worker_name).active == 0)


def test_a_draft_starting_or_ending_is_reported_at_once_not_at_the_next_interval(client, monkeypatch):
    name = f"celery@unit-{uuid.uuid4().hex[:8]}"
    slow = presence.Reporter(name=name, queues=["gpu-tiny"], capacity=1, pool="thread", interval_s=60)
    monkeypatch.setattr(presence, "_reporter", slow)
    monkeypatch.setattr(presence, "_reporter_pid", os.getpid())
    slow.start()
    try:
        wait_for(lambda: stored(client, name))
        with presence.drafting():
            assert wait_for(lambda: stored(client, name).active == 1, timeout=5)  # not 60 s
        assert wait_for(lambda: stored(client, name).active == 0, timeout=5)
    finally:
        slow.stop()
        client.delete(worker_key(name))


def test_a_model_that_failed_to_load_is_reported_with_its_reason(client, reporter):
    presence.model_failed("could not load model 'google/medgemma-27b-it': gated")
    reporter.start()
    report = wait_for(lambda: stored(client, reporter.worker_name))
    assert (report.state, report.error) == ("failed", "could not load model 'google/medgemma-27b-it': gated")


def test_a_stopped_reporter_removes_its_report_at_once(client, reporter):
    reporter.start()
    wait_for(lambda: stored(client, reporter.worker_name))
    reporter.stop()
    assert not reporter.is_alive()
    assert stored(client, reporter.worker_name) is None


def test_it_keeps_going_while_redis_is_unreachable(client, reporter, settings):
    reachable = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    reporter.start()
    time.sleep(1.5)  # two failed reports (logged once)
    assert reporter.is_alive()
    settings.REDIS_URL = reachable
    assert wait_for(lambda: stored(client, reporter.worker_name))
