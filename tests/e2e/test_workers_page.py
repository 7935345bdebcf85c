"""Many workers, one page: real Celery workers report themselves, and the admin's Workers
page (over real HTTP from the stack's web server) shows each with its model, device, memory,
load and queues, each queue's depth and oldest waiting draft, and a warning for a queue
that has drafts and no worker."""

from __future__ import annotations

import re
import signal
import socket
import uuid
from html.parser import HTMLParser

import httpx
import pytest
import redis
from django.conf import settings

from medportal.access.roles import Role
from medportal.reporting.models import Report, ReportStatus
from tests.conftest import PASSWORD, make_user, token_header
from tests.e2e.test_faults import upload, wait_for
from tests.queues import draft_args

pytestmark = [pytest.mark.e2e]

POOL = f"gpu-tiny-{uuid.uuid4().hex[:8]}"  # the tiny model's pool: only the test's threads worker
ORPHAN = f"gpu-tiny-{uuid.uuid4().hex[:8]}"  # a pool queue no worker consumes
FAST_REPORTS = {"MEDPORTAL_WORKER_REPORT_SECONDS": 1}


class Rows(HTMLParser):
    """The page's table rows marked ``data-worker`` / ``data-queue``: each cell's text and
    attributes by its class."""

    def __init__(self, html: str):
        super().__init__()
        self.rows: dict[str, dict[str, dict]] = {}
        self._row: dict | None = None
        self._cell: dict | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and ("data-worker" in attrs or "data-queue" in attrs):
            self._row = self.rows.setdefault(attrs.get("data-worker") or attrs["data-queue"], {})
            self._row["_attrs"] = attrs
        elif tag == "td" and self._row is not None:
            self._cell = self._row.setdefault(
                attrs.get("class") or f"td{len(self._row)}", {**attrs, "text": ""}
            )

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "tr":
            self._row = None


def admin_session(stack) -> httpx.Client:
    """An admin logged in through the login form, as in a browser."""
    make_user("ada", Role.ADMIN)
    session = stack.http()
    session.get("/login/")
    response = session.post(
        "/login/",
        data={"username": "ada", "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
    )
    assert response.status_code == 302, response.text
    return session


def workers_page(session: httpx.Client) -> tuple[str, Rows]:
    response = session.get("/workers/", headers={"HX-Request": "true"})  # the part the page polls
    assert response.status_code == 200
    return response.text, Rows(response.text)


def warnings(html: str) -> str:
    """The warnings listed above the tables ("" when there are none)."""
    if 'id="workers-warnings"' not in html:
        return ""
    return html.split('id="workers-warnings"', 1)[1].split("</ul>", 1)[0]


def text(cell: dict) -> str:
    return " ".join(cell["text"].split())


@pytest.mark.stack_env(MEDPORTAL_MODEL_QUEUES=f"tiny={POOL}", MEDPORTAL_MAX_NEW_TOKENS=400, **FAST_REPORTS)
def test_the_page_shows_each_live_worker_with_its_model_device_memory_load_and_queues(stack, radiologist):
    # Beside the stack's worker (prefork, its default queue), one of the tiny model's pool,
    # with the production pool: threads, two drafts at once.
    threads_worker = stack.start_worker(
        pool="threads", concurrency=2, queues=[POOL], name="pool-worker", node=f"pool-{POOL}"
    )
    host = socket.gethostname()
    name = f"pool-{POOL}@{host}"
    session = admin_session(stack)

    def ready_rows():
        _, rows = workers_page(session)
        ready = name in rows.rows and text(rows.rows[name]["state"]) == "ready"
        return rows if ready else None

    rows = wait_for(ready_rows, timeout=60, what="the pool worker on the page, its model loaded")
    pool_worker = rows.rows[name]
    assert text(pool_worker["host"]) == host
    assert text(pool_worker["queues"]) == POOL
    assert text(pool_worker["model"]) == "tiny transformers"
    assert text(pool_worker["device"]) == "cpu"
    assert int(pool_worker["memory"]["data-bytes"]) > 100 * 2**20  # torch and the model, resident
    assert "resident" in text(pool_worker["memory"])
    assert (pool_worker["load"]["data-active"], pool_worker["load"]["data-capacity"]) == ("0", "2")
    assert re.fullmatch(r"\d s ago", text(pool_worker["seen"]))
    assert text(pool_worker["name"]) == f"{name} thread, pid {threads_worker.pid}"

    # The stack's prefork worker (node "<its queue>@host"): its pool process holds the model and
    # reports (capacity 1).
    prefork_pid = stack.processes["worker"].pid
    (prefork_name,) = [
        n
        for n in rows.rows
        if n.startswith(f"{stack.env['MEDPORTAL_QUEUE']}@{host}/")
        and n != name
        and text(rows.rows[n]["queues"]) == stack.env["MEDPORTAL_QUEUE"]
    ]
    prefork = rows.rows[prefork_name]
    assert text(prefork["model"]) == "tiny transformers" and text(prefork["device"]) == "cpu"
    assert prefork["load"]["data-capacity"] == "1"
    assert int(prefork_name.rsplit("/", 1)[1]) != prefork_pid  # the child, not the parent

    # Both queues are listed, each served by its worker, no warning about either.
    html, rows = workers_page(session)
    assert text(rows.rows[POOL]["served"]) == "1"
    assert text(rows.rows[stack.env["MEDPORTAL_QUEUE"]]["served"]) == "1"
    assert POOL not in warnings(html)

    # A draft by the tiny model goes to its pool; while it runs the pool worker's load shows it.
    api = stack.http(token_header(radiologist)["HTTP_AUTHORIZATION"].split()[1])
    report = upload(api)
    assert api.post(f"/api/reports/{report['id']}/draft/").status_code == 202
    wait_for(
        lambda: workers_page(session)[1].rows[name]["load"]["data-active"] == "1",
        timeout=60,
        what="the pool worker's load to show its draft",
    )
    assert text(workers_page(session)[1].rows[name]["load"]).startswith("1 / 2")
    drafted = wait_for(
        lambda: Report.objects.filter(pk=report["id"], status=ReportStatus.DRAFTED).first(),
        timeout=300,  # generous: CI machines run other tests beside this one
        what="the draft to finish",
    )
    assert drafted.draft_queue == POOL
    wait_for(lambda: workers_page(session)[1].rows[name]["load"]["data-active"] == "0", what="load 0")

    # A worker that stops leaves the page at once (it removes its report on shutdown).
    threads_worker.send_signal(signal.SIGTERM)
    assert threads_worker.wait(timeout=60) == 0
    html, rows = workers_page(session)
    assert name not in rows.rows
    assert text(rows.rows[POOL]["served"]) == "none"  # listed still: it is the tiny model's pool


@pytest.mark.stack_env(MEDPORTAL_MODEL_QUEUES=f"tiny={ORPHAN}", **FAST_REPORTS)
def test_a_queue_with_waiting_drafts_and_no_live_worker_is_flagged(stack, radiologist):
    broker = redis.Redis.from_url(settings.REDIS_URL)
    try:
        api = stack.http(token_header(radiologist)["HTTP_AUTHORIZATION"].split()[1])
        report = upload(api)
        assert api.post(f"/api/reports/{report['id']}/draft/").status_code == 202

        # The web server routed the tiny model's draft to its pool's queue, in the real broker.
        wait_for(lambda: draft_args(broker, ORPHAN), timeout=10, what="the draft in the pool queue")
        assert draft_args(broker, ORPHAN) == [[report["id"], 1]]
        assert draft_args(broker, stack.env["MEDPORTAL_QUEUE"]) == []
        stored = Report.objects.get(pk=report["id"])
        assert (stored.status, stored.draft_queue) == (ReportStatus.QUEUED, ORPHAN)

        session = admin_session(stack)
        html, rows = workers_page(session)
        orphan = rows.rows[ORPHAN]
        assert int(text(orphan["depth"])) >= 1
        assert text(orphan["waiting"]) == "1"
        assert int(orphan["oldest"]["data-age-seconds"]) >= 0
        assert re.fullmatch(r"\d+ s|\d+ min \d+ s", text(orphan["oldest"]))
        assert "none: its drafts are not being taken" in text(orphan["served"])
        assert orphan["_attrs"]["class"] == "unserved"
        assert (
            f"Queue {ORPHAN} has 1 draft waiting and no live worker serves it: "
            f"start a worker with -Q {ORPHAN} and MEDPORTAL_MODEL=tiny."
        ) in warnings(html)
        # The stack's own queue is served (its worker is live) and has nothing waiting.
        served = rows.rows[stack.env["MEDPORTAL_QUEUE"]]
        assert text(served["served"]) == "1" and text(served["depth"]) == "0"

        # The whole page, as opened from the menu, says the same.
        page = session.get("/workers/")
        assert page.status_code == 200 and "Inference workers" in page.text
        assert f"Queue {ORPHAN} has 1 draft waiting" in page.text
    finally:
        broker.delete(ORPHAN)
        broker.close()
