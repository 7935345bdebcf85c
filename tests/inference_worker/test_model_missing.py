"""A newcomer without the model's weights is told within seconds, not after minutes of retries."""

from __future__ import annotations

import socket
import time

import huggingface_hub.constants
import pytest

from inference_worker import presence, tasks
from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Study
from medportal.intake.receive import studies_receive
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.services import drafts
from tests.conftest import dicom_bytes


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture
def unreachable_hub(settings, monkeypatch):
    """The default hub model, no local copy, and a hub that cannot be reached."""
    settings.MEDPORTAL_MODEL = "google/medgemma-1.5-4b-it"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(presence, "_load_error", "")


@pytest.mark.django_db
def test_a_worker_that_cannot_reach_the_hub_fails_a_draft_within_seconds(
    unreachable_hub, radiologist, django_capture_on_commit_callbacks, caplog
):
    _, reports = studies_receive(
        files=[IncomingFile("CT_small.dcm", dicom_bytes("CT_small.dcm"))],
        uploader=radiologist,
        auto_draft=False,
    )
    Study.objects.filter(pk=reports[0].study_id).update(body_part="HEAD")
    report = drafts.draft_request(report=reports[0], user=radiologist)

    started = time.monotonic()
    tasks._load_model()  # as the worker does at start: the Workers page and the terminal are told
    outcome = tasks.draft_report(report.pk, report.attempt)  # the task itself, the real engine loader
    elapsed = time.monotonic() - started

    assert outcome == "failed" and elapsed < 15
    failed = Report.objects.get(pk=report.pk)
    assert failed.status == ReportStatus.FAILED
    assert "cannot reach the Hugging Face hub" in failed.failure_reason
    assert "HF_TOKEN" in failed.failure_reason and "tiny" in failed.failure_reason
    state = presence.current_report(name="w", queues=["q"], capacity=1, pool="threads", started_at=0)
    assert state.state == "failed" and "HF_TOKEN" in state.error
    assert any("HF_TOKEN" in record.getMessage() for record in caplog.records)  # in the terminal


def test_an_offline_worker_without_a_local_copy_says_so_at_once(settings, monkeypatch):
    from inference_worker.engines.base import ModelLoadError
    from inference_worker.engines.transformers_engine import TransformersEngine

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache and HF_HUB_OFFLINE"):
        TransformersEngine("google/medgemma-1.5-4b-it")
    assert time.monotonic() - started < 5


def test_a_speech_model_that_cannot_be_had_names_its_own_variable(unreachable_hub):
    from inference_worker.asr import AsrEngine
    from inference_worker.engines.base import ModelLoadError

    with pytest.raises(ModelLoadError) as refused:
        AsrEngine("google/medasr", hub_timeout_s=2)
    message = str(refused.value)
    assert "cannot reach the Hugging Face hub" in message
    assert "MEDPORTAL_ASR_MODEL to a local copy" in message and "MEDPORTAL_ASR_MODEL=tiny" in message
    assert "MEDPORTAL_MODEL " not in message and "MEDPORTAL_MODEL=" not in message
