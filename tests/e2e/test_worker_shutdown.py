"""Graceful shutdown: a worker (threads pool, several drafts at once) that gets SIGTERM in the
middle of its drafts finishes them, takes no new one, and exits; the next worker drafts
what was left in the queue."""

from __future__ import annotations

import signal
from contextlib import ExitStack

import pytest
from websockets.sync.client import connect

from medportal.reporting.models import Report, ReportStatus, ReportVersion
from tests.conftest import token_header
from tests.e2e.conftest import ARTIFACTS, stop
from tests.e2e.test_faults import drafting_with_text, upload, wait_for
from tests.stream_client import DraftFollower

pytestmark = [pytest.mark.e2e]
DRAFTS = 2


@pytest.mark.stack_env(MEDPORTAL_MAX_NEW_TOKENS=400, MEDPORTAL_BATCH_SIZE=DRAFTS)
def test_a_worker_asked_to_stop_finishes_its_running_drafts_and_takes_no_new_one(stack, radiologist):
    stop(stack.processes["worker"])  # the stack's default worker; this test runs the production pool
    worker = stack.start_worker(pool="threads", concurrency=DRAFTS)
    token = token_header(radiologist)["HTTP_AUTHORIZATION"].split()[1]
    api = stack.http(token)
    reports = [upload(api) for _ in range(DRAFTS + 1)]
    running, left_over = reports[:DRAFTS], reports[DRAFTS]

    with ExitStack() as sockets:
        followers = []
        for report in running:
            ws = sockets.enter_context(
                connect(report["stream_url"], additional_headers={"Authorization": f"Token {token}"})
            )
            followers.append(DraftFollower(ws))
            followers[-1].receive(timeout=10)  # the snapshot
        for report in running:
            assert api.post(f"/api/reports/{report['id']}/draft/").status_code == 202
        for report in running:
            wait_for(lambda r=report: drafting_with_text(r["id"], 1), what="the drafts to be under way")

        log = ARTIFACTS / f"worker-{stack.env['MEDPORTAL_QUEUE']}.log"
        logged_before = log.stat().st_size
        worker.send_signal(signal.SIGTERM)
        # Requested after the signal: the stopping worker must leave it in the queue.
        assert api.post(f"/api/reports/{left_over['id']}/draft/").status_code == 202
        finals = [follower.follow_to_end(timeout=180) for follower in followers]
    assert worker.wait(timeout=120) == 0
    # The drafts finished after the signal, not before it.
    after_signal = log.read_bytes()[logged_before:]
    assert b"Warm shutdown" in after_signal
    assert after_signal.split(b"Warm shutdown", 1)[1].count(b"succeeded") == DRAFTS

    for report, follower, final in zip(running, followers, finals, strict=True):
        stored = Report.objects.get(pk=report["id"])
        assert stored.status == ReportStatus.DRAFTED, stored.failure_reason
        # Finished by the stopping worker itself: claimed once, never redelivered.
        assert (stored.attempt, stored.draft_claim) == (1, 1)
        assert ReportVersion.objects.filter(report=stored, source=ReportVersion.AI).count() == 1
        assert final == stored.draft_text == follower.live_text_at_end
        # Its own stream, its own sequence: 1, 2, 3, ... with nothing lost or mixed in.
        assert {chunk["stream"] for chunk in follower.chunks} == {"1.1"}
        assert [chunk["seq"] for chunk in follower.chunks] == list(range(1, len(follower.chunks) + 1))
        assert follower.resyncs == 0
    assert Report.objects.get(pk=left_over["id"]).status == ReportStatus.QUEUED

    stack.start_worker(pool="threads", concurrency=DRAFTS)
    drafted = wait_for(
        lambda: Report.objects.filter(pk=left_over["id"], status=ReportStatus.DRAFTED).first(),
        timeout=180,
        what="the next worker to draft the report left in the queue",
    )
    assert drafted.draft_claim == 1
