"""Redis restarts in the middle of a draft: the page's websocket reconnects, and the text it
shows equals the database's. The stack runs on a Redis of its own, so the restart hurts no one else."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import redis
from playwright.sync_api import expect

from medportal.reporting.models import Report, ReportStatus
from tests.conftest import PASSWORD, token_header, with_body_part
from tests.e2e.conftest import ARTIFACTS, free_port
from tests.e2e.test_browser import browser_page  # noqa: F401  (fixture)

pytestmark = [pytest.mark.e2e]
REDIS_PORT = free_port()


class RedisServer:
    def __init__(self, port: int):
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        pytest.fail("redis-server did not start")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def own_redis():
    server = RedisServer(REDIS_PORT)
    server.start()
    yield server
    server.stop()


@pytest.mark.stack_env(REDIS_URL=f"redis://127.0.0.1:{REDIS_PORT}/0", MEDPORTAL_MAX_NEW_TOKENS=1500)
def test_the_page_reconnects_after_redis_restarts_and_shows_the_database_text(
    own_redis,
    stack,
    radiologist,
    browser_page,  # noqa: F811
):
    page = browser_page
    api = stack.http(token_header(radiologist)["HTTP_AUTHORIZATION"].split()[1])
    ct = with_body_part("CT_small.dcm", "HEAD")
    study_id = api.post("/api/studies/", files={"files": ("CT.dcm", ct)}).json()["studies"][0]["id"]
    # Count websocket openings and keep the last text the stream showed.
    page.add_init_script(
        """(() => {
            window.socketOpens = 0;
            const Native = window.WebSocket;
            window.WebSocket = function (...args) {
                const socket = new Native(...args);
                socket.addEventListener('open', () => { window.socketOpens += 1; });
                return socket;
            };
            window.WebSocket.OPEN = Native.OPEN;
            new MutationObserver(() => {
                const out = document.querySelector('#draft-stream');
                if (out) window.lastDraftText = out.textContent;
            }).observe(document, {subtree: true, childList: true, characterData: true});
        })()"""
    )
    page.goto(f"{stack.base_url}/login/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{stack.base_url}/studies/{study_id}/")
    page.click("#draft-button")
    page.wait_for_function("() => (window.lastDraftText || '').length > 20", timeout=60_000)

    own_redis.stop()
    time.sleep(1.5)
    own_redis.start()

    expect(page.locator("#report-status")).to_have_text("Drafted", timeout=120_000)
    page.screenshot(path=ARTIFACTS / "redis-restart-drafted.png")
    stored = Report.objects.get(study_id=study_id)
    assert stored.status == ReportStatus.DRAFTED
    assert page.evaluate("window.socketOpens") >= 2, "the page should have reconnected"
    assert page.evaluate("window.lastDraftText") == stored.draft_text
