"""The one-command launcher (``python -m medportal.launcher``, what bin/run starts) with GPU
pools configured: its one worker consumes the default queue and its model's pool queue, so
every draft the site sends is drafted."""

from __future__ import annotations

import uuid

import httpx
import pytest

from medportal.operations.presence import redis_client
from medportal.operations.selectors import workers_live
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.services import drafts
from tests.conftest import token_header
from tests.e2e.conftest import launcher_running, wait_for_log
from tests.e2e.test_faults import upload, wait_for

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def launcher(transactional_db, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    default, pool = f"launcher-{suffix}", f"gpu-tiny-{suffix}"
    env = {"MEDPORTAL_QUEUE": default, "MEDPORTAL_MODEL_QUEUES": f"tiny={pool}"}
    with launcher_running(tmp_path, name=f"launcher-{suffix}", env=env, queues=[default, pool]) as running:
        wait_for_log(running["log"], b"ready.", running["process"], timeout=180)  # the worker
        yield {**running, "default": default, "pool": pool}


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
