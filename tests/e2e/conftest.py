"""A real stack for end-to-end tests: daphne serving the ASGI app and a Celery worker
process, both subprocesses on the test database, Redis and the tiny model."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("end-to-end tests need PostgreSQL: run them with bin/test (DATABASE_URL=postgres://...)")
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@dataclass
class Stack:
    base_url: str
    ws_url: str
    env: dict
    processes: dict

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Token {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def start_worker(
        self,
        *,
        pool: str = "prefork",
        concurrency: int = 1,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        queues: list[str] | None = None,
        name: str = "worker",
        node: str | None = None,
    ) -> subprocess.Popen:
        """A Celery worker on ``queues`` (the stack's draft queue by default), kept as
        ``processes[name]``; another ``name`` starts one beside the others, with ``node`` its
        Celery node name (``node@host``). ``cwd`` and ``env`` (added to the stack's) let it run
        as on another host: its own working directory, data folder and pixel source."""
        worker = start_celery_worker(
            {**self.env, **(env or {})},
            queues=queues or [self.env["MEDPORTAL_QUEUE"]],
            pool=pool,
            concurrency=concurrency,
            cwd=cwd,
            node=node,
        )
        self.processes[name] = worker
        return worker


def start_celery_worker(
    env: dict,
    *,
    queues: list[str],
    pool: str = "prefork",
    concurrency: int = 1,
    cwd: Path | None = None,
    node: str | None = None,
) -> subprocess.Popen:
    """A real ``celery worker`` process consuming ``queues``, started and ready (its log in
    test-artifacts/worker-<first queue>.log; its node name ``node``, else the first queue)."""
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"worker-{queues[0]}.log", "ab")  # noqa: SIM115
    # A worker started after another appends to the same log: wait for its own "ready.".
    start = log.tell()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "medportal",
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "-Q",
            ",".join(queues),
            f"--hostname={node or queues[0]}@%h",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        cwd=cwd or ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for_log(log.name, b"ready.", worker, offset=start)
    return worker


def wait_for_log(
    path: str, marker: bytes, process: subprocess.Popen, timeout: float = 120, offset: int = 0
) -> None:
    """Wait until ``marker`` appears in the log after byte ``offset``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"process exited with {process.returncode}; see {path}")
        if marker in Path(path).read_bytes()[offset:]:
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {marker!r} in {path}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def launcher_running(tmp_path: Path, *, name: str, env: dict[str, str], queues: list[str]) -> Iterator[dict]:
    """``python -m medportal.launcher`` (what bin/run starts) on a free port, over the test's
    database, Redis and data folder with ``env`` on top; stopped as a user stops it (SIGINT),
    its ``queues`` emptied after. Its output goes to test-artifacts/<name>.log."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "MEDPORTAL_MODEL": "tiny",
        "MEDPORTAL_AUTO_DRAFT": "false",
        "MEDPORTAL_WORKER_REPORT_SECONDS": "1",
        "MEDPORTAL_DIMSE_PORT": str(free_port()),
        "MEDPORTAL_IMAGE_STORE": str(tmp_path / "images"),
        "MEDPORTAL_DATA_DIR": str(settings.DATA_DIR),
        **env,
    }
    log = open(ARTIFACTS / f"{name}.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "medportal.launcher", "--port", str(port), "--admin", f"admin-{name}"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield {"process": process, "port": port, "log": log.name}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # the launcher stops its processes
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop(process)
        log.close()
        broker = redis.Redis.from_url(settings.REDIS_URL)
        broker.delete(*queues)
        broker.close()


@pytest.fixture
def stack(transactional_db, tmp_path, request):
    """Web (daphne) and worker (Celery) processes; a fresh queue so no other run's task is taken.

    ``@pytest.mark.stack_env(NAME=value)`` sets more environment for both processes."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        MEDPORTAL_QUEUE=queue,
        MEDPORTAL_MODEL="tiny",
        MEDPORTAL_AUTO_DRAFT="false",
        MEDPORTAL_IMAGE_STORE=str(tmp_path / "images"),
        MEDPORTAL_DATA_DIR=str(settings.DATA_DIR),
        PYTHONPATH=str(ROOT),
    )
    for marker in request.node.iter_markers("stack_env"):
        env.update({key: str(value) for key, value in marker.kwargs.items()})
    web_log = open(ARTIFACTS / f"web-{queue}.log", "ab")  # noqa: SIM115
    web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "medportal.asgi:application"],
        env=env,
        cwd=ROOT,
        stdout=web_log,
        stderr=subprocess.STDOUT,
    )
    running = Stack(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", env, {"web": web})
    wait_for_log(web_log.name, b"Listening on TCP address", web)
    try:
        running.start_worker()
        yield running
    finally:
        for process in running.processes.values():
            stop(process)
        redis.Redis.from_url(settings.REDIS_URL).delete(queue)
