"""The one-command launcher (``python -m medportal.launcher``, what bin/run starts) with GPU
pools configured: its one worker consumes the default queue and its model's pool queue, so
every draft the site sends is drafted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import httpx
import pytest
import redis
from django.conf import settings

from medportal.operations.presence import redis_client
from medportal.operations.selectors import workers_live
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.services import drafts
from tests.conftest import token_header
from tests.e2e.conftest import ARTIFACTS, ROOT, database_url, free_port, stop, wait_for_log
from tests.e2e.test_faults import upload, wait_for

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def launcher(transactional_db, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    suffix = uuid.uuid4().hex[:8]
    default, pool = f"launcher-{suffix}", f"gpu-tiny-{suffix}"
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "MEDPORTAL_QUEUE": default,
        "MEDPORTAL_MODEL": "tiny",
        "MEDPORTAL_MODEL_QUEUES": f"tiny={pool}",
        "MEDPORTAL_AUTO_DRAFT": "false",
        "MEDPORTAL_WORKER_REPORT_SECONDS": "1",
        "MEDPORTAL_DIMSE_PORT": str(free_port()),
        "MEDPORTAL_IMAGE_STORE": str(tmp_path / "images"),
        "MEDPORTAL_DATA_DIR": str(settings.DATA_DIR),
    }
    log = open(ARTIFACTS / f"launcher-{suffix}.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "medportal.launcher", "--port", str(port), "--admin", f"admin-{suffix}"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_log(log.name, b"ready.", process, timeout=180)  # the worker
        yield {"process": process, "port": port, "default": default, "pool": pool}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # the launcher stops its processes
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop(process)
        broker = redis.Redis.from_url(settings.REDIS_URL)
        broker.delete(default, pool)
        broker.close()


def test_the_launchers_worker_serves_the_default_queue_and_its_models_pool(launcher, radiologist, settings):
    def launcher_worker():
        with redis_client() as client:
            live = [w.report for w in workers_live(client=client) if launcher["default"] in w.report.queues]
        return live[0] if live and live[0].state == "ready" else None

    worker = wait_for(launcher_worker, timeout=60, what="the launcher's worker to report itself")
    assert sorted(worker.queues) == sorted([launcher["default"], launcher["pool"]])
    assert (worker.model, worker.device, worker.pool) == ("tiny", "cpu", "thread")

    # Through the launcher's web server: the tiny model's draft goes to its pool queue.
    token = token_header(radiologist)["HTTP_AUTHORIZATION"].split()[1]
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{launcher['port']}",
        headers={"Authorization": f"Token {token}"},
        timeout=30,
    )
    pooled = upload(api)
    assert api.post(f"/api/reports/{pooled['id']}/draft/").status_code == 202
    # A draft by a model without a pool goes to the default queue.
    other = upload(api)
    settings.CELERY_TASK_DEFAULT_QUEUE = launcher["default"]
    settings.MEDPORTAL_MODEL = "google/medgemma-4b-it"
    drafts.draft_request(report=Report.objects.get(pk=other["id"]), user=radiologist)

    for report, queue in ((pooled, launcher["pool"]), (other, launcher["default"])):
        drafted = wait_for(
            lambda r=report: Report.objects.filter(pk=r["id"], status=ReportStatus.DRAFTED).first(),
            timeout=180,
            what=f"the draft sent to {queue}",
        )
        assert drafted.draft_queue == queue
