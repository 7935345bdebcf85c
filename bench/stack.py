"""What the benches that start MedPortal's processes share: their environment and a login.

The environment is the launcher's (``medportal.launcher.prepare``: the embedded Redis and SQLite
unless ``REDIS_URL`` / ``DATABASE_URL`` name real ones), set in the bench's own process too, so
that its ``django.setup()`` reads the database its web and worker processes write.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the bench's own process takes from the stack's environment, besides MEDPORTAL_* settings.
_SHARED = ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for the web server or the DICOM receiver)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_environment(
    data_dir: Path, *, settings: dict[str, str] | None = None, defaults: dict[str, str] | None = None
) -> tuple[dict[str, str], object]:
    """The stack's environment and the embedded Redis server (None when ``REDIS_URL`` is set).

    Drafts are never started by an upload (the bench starts them); ``settings`` are the bench's
    own, ``defaults`` give way to the caller's environment (a queue name, the tiny model)."""
    from medportal.launcher import prepare

    env = dict(os.environ, MEDPORTAL_DATA_DIR=str(data_dir), MEDPORTAL_AUTO_DRAFT="false", **(settings or {}))
    for key, value in {"MEDPORTAL_MODEL": "tiny", **(defaults or {})}.items():
        env.setdefault(key, value)
    redis_server = prepare(env, admin=None)
    os.environ.update(
        {key: value for key, value in env.items() if key.startswith("MEDPORTAL_") or key in _SHARED}
    )
    return env, redis_server


def radiologist_token(env: dict[str, str], username: str = "bench") -> str:
    """An API token of the radiologist ``username`` (made when missing), through manage.py in
    the stack's environment (the bench's process has not set Django up)."""
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run(
        [
            *manage,
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model; from tests.conftest import make_user; "
            f"from medportal.access.roles import Role; get_user_model().objects.filter(username={username!r})"
            f".exists() or make_user({username!r}, Role.RADIOLOGIST)",
        ],
        env=env,
        check=True,
        cwd=ROOT,
    )
    return subprocess.run(
        [*manage, "medportal_token", username], env=env, check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
