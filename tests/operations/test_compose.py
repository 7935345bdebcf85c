"""docker-compose.yml (docker itself is not available here): it parses, its workers scale
(`docker compose up --scale worker=N`), and the commented pool example is a working service."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from medportal.celery import DEFAULT_QUEUE

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def services(text: str | None = None) -> dict:
    return yaml.safe_load(text if text is not None else COMPOSE.read_text())["services"]


def queues_of(command: str) -> str:
    return re.search(r"-Q (\S+)", command).group(1)


def test_the_worker_scales_nothing_in_it_must_be_unique_per_container():
    worker = services()["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker  # a fixed host port would clash between replicas
    assert "hostname" not in worker  # each replica's Celery node name comes from its own hostname
    assert not re.search(r"(-n|--hostname)[ =]", worker["command"])


def test_the_worker_takes_the_default_queue_unless_told_otherwise():
    worker = services()["worker"]
    assert queues_of(worker["command"]) == f"${{MEDPORTAL_WORKER_QUEUES:-{DEFAULT_QUEUE}}}"
    assert "--pool=threads" in worker["command"]


def test_the_site_and_the_workers_share_the_pool_mapping():
    for name in ("web", "dimse", "worker"):
        assert services()[name]["environment"]["MEDPORTAL_MODEL_QUEUES"] == "${MEDPORTAL_MODEL_QUEUES:-}"


def test_the_commented_pool_example_is_a_working_service_once_uncommented():
    lines = COMPOSE.read_text().splitlines()
    start = lines.index("  # worker-27b:")
    example = []
    for line in lines[start:]:
        if not line.startswith("  #"):
            break
        example.append("  " + line[len("  # ") :])
    text = "\n".join(lines[:start] + example + lines[start + len(example) :])

    pool = services(text)["worker-27b"]
    worker = services(text)["worker"]
    assert queues_of(pool["command"]) == "gpu-27b"
    assert pool["environment"]["MEDPORTAL_MODEL"] == "google/medgemma-27b-it"
    # Everything else as the default worker: the database, Redis, the token, the volumes.
    for key in ("DATABASE_URL", "REDIS_URL", "HF_TOKEN", "MEDPORTAL_BATCH_SIZE", "MEDPORTAL_MODEL_QUEUES"):
        assert pool["environment"][key] == worker["environment"][key]
    assert pool["volumes"] == worker["volumes"] and pool["image"] == worker["image"]
    assert pool["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "device_ids": ["1"], "capabilities": ["gpu"]}
    ]
    assert "container_name" not in pool and "ports" not in pool
