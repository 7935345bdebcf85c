"""Under ``bin/run`` (the launcher): the worker killed (kill -9) in the middle of a draft is
started again by the launcher while the web keeps serving, and the draft, whose lease its dead
worker no longer renews, is taken up again by the sweep and written exactly once, within a minute."""

from __future__ import annotations

import os
import signal
import time
import uuid

import httpx
import psutil
import pytest

from medportal.audit.models import AuditEvent
from medportal.launcher import MAX_RESTARTS, RESTART_WINDOW_S
from medportal.operations.presence import redis_client
from medportal.operations.selectors import workers_live
from medportal.reporting.models import Report, ReportStatus, ReportVersion
from tests.conftest import token_header
from tests.e2e.conftest import launcher_running
from tests.e2e.test_faults import drafting_with_text, upload, wait_for

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def launcher(transactional_db, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    queue, interfaces = f"launcher-{suffix}", f"interfaces-{suffix}"
    env = {
        "MEDPORTAL_QUEUE": queue,
        "MEDPORTAL_INTERFACES_QUEUE": interfaces,
        "MEDPORTAL_MAX_NEW_TOKENS": "200",  # long enough to be killed in the middle, short to redo
        "MEDPORTAL_DRAFT_LEASE_SECONDS": "6",
        "MEDPORTAL_DRAFT_SWEEP_SECONDS": "2",
    }
    name = f"launcher-faults-{suffix}"
    with launcher_running(tmp_path, name=name, env=env, queues=[queue, interfaces]) as running:
        yield {**running, "queue": queue}


def ready_worker(queue: str):
    with redis_client() as client:
        live = [w.report for w in workers_live(client=client) if queue in w.report.queues]
    return live[0] if live and live[0].state == "ready" else None


def draft_worker(launcher) -> psutil.Process:
    """The launcher's drafting worker (not the interfaces worker, which runs the beat)."""
    for child in psutil.Process(launcher["process"].pid).children():
        command = child.cmdline()
        if "worker" in command and launcher["queue"] in " ".join(command) and "-B" not in command:
            return child
    pytest.fail("the launcher runs no drafting worker")


# One kill in CI; MEDPORTAL_LAUNCHER_FAULT_KILLS=20 for the README's figure.
KILLS = int(os.environ.get("MEDPORTAL_LAUNCHER_FAULT_KILLS", "1"))
# Kills spaced so that they are not a crash loop, which stops the launcher by design.
KILL_SPACING_S = RESTART_WINDOW_S / MAX_RESTARTS + 1


def test_a_worker_killed_mid_draft_is_restarted_and_its_draft_finishes_within_a_minute(launcher, radiologist):
    token = token_header(radiologist)["HTTP_AUTHORIZATION"].split()[1]
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{launcher['port']}",
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    took, last_kill = [], 0.0
    for _ in range(KILLS):
        wait_for(lambda: ready_worker(launcher["queue"]), timeout=180, what="the launcher's worker")
        time.sleep(max(0.0, last_kill + KILL_SPACING_S - time.monotonic()))
        last_kill = time.monotonic()
        took.append(_kill_mid_draft(launcher, api))
    seconds = ", ".join(f"{t:.1f}" for t in took)
    print(f"\n{KILLS} kills: each draft taken up again and finished in {seconds} s (max {max(took):.1f})")


def _kill_mid_draft(launcher, api: httpx.Client) -> float:
    """Kill the worker in the middle of a new draft; the seconds until that draft is done."""
    report = upload(api)
    assert api.post(f"/api/reports/{report['id']}/draft/").status_code == 202
    wait_for(lambda: drafting_with_text(report["id"], 1), timeout=120, what="the draft to be under way")
    worker = draft_worker(launcher)
    worker.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()

    def drafted():
        # The web keeps serving while the worker is down and comes back.
        assert api.get(f"/api/reports/{report['id']}/").status_code == 200
        return Report.objects.filter(pk=report["id"], status=ReportStatus.DRAFTED).first()

    stored = wait_for(drafted, timeout=60, what="the draft to be taken up again and finished")
    took = time.monotonic() - killed_at
    assert launcher["process"].poll() is None
    assert draft_worker(launcher).pid != worker.pid  # started again by the launcher
    assert stored.draft_claim == 2  # the dead worker's claim, then exactly one more
    assert ReportVersion.objects.filter(report=stored, source=ReportVersion.AI).count() == 1
    # Every actor named: the workers' reads of the study, the sweep that sent the draft again.
    reads = AuditEvent.objects.filter(description="Study read for an AI draft", detail__report=stored.pk)
    users = list(reads.values_list("username", flat=True))
    assert len(users) == 2 and all(user.startswith("worker:") for user in users), users
    events = AuditEvent.objects.filter(object_type="report", object_id=str(stored.pk))
    sweeps = list(
        events.filter(description__startswith="AI draft sent to a worker again").values_list(
            "username", flat=True
        )
    )
    assert sweeps == [sweeps[0]] and sweeps[0].startswith("worker:interfaces@")
    return took
