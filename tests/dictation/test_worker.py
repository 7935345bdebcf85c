"""The ASR worker's path with the tiny MedASR: a piece of speech stored as it arrives, transcribed by
the real pipeline, the text and operations sent to the page's channel over Redis, the audio deleted
(or kept as long as configured) and every step audited."""

from __future__ import annotations

import os
import time

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from inference_worker.asr import AsrEngine
from inference_worker.dictation import dictation_transcribe
from inference_worker.engines.base import ModelLoadError
from medportal.audit.models import AuditEvent
from medportal.dictation.audio import AudioRefused, audio_receive, audio_sweep
from medportal.dictation.publish import ChannelPublisher
from medportal.reporting.models import Report, ReportStatus
from tests.dictation.speech import pcm16, speech_samples
from tests.reporting.test_worklist import add_study


@pytest.fixture(scope="session")
def tiny_asr() -> AsrEngine:
    return AsrEngine("tiny", cache_dir=settings.DATA_DIR / "models")


@pytest.fixture
def audio_dir(settings, tmp_path):
    settings.MEDPORTAL_AUDIO_DIR = tmp_path / "audio"
    return settings.MEDPORTAL_AUDIO_DIR


@pytest.fixture
def report(db) -> Report:
    return Report.objects.get(study=add_study(status=ReportStatus.IN_REVIEW))


@pytest.fixture
def page_channel():
    """A page's channel, as its dictation socket has: (name, receive)."""
    layer = get_channel_layer()
    name = async_to_sync(layer.new_channel)()
    return name, lambda: async_to_sync(layer.receive)(name)


def descriptions(report: Report) -> list[str]:
    return list(
        AuditEvent.objects.filter(
            object_type="report", object_id=str(report.pk), description__contains="audio"
        )
        .order_by("id")
        .values_list("description", flat=True)
    )


def test_a_piece_of_speech_is_transcribed_sent_to_the_page_and_its_audio_deleted(
    tiny_asr, audio_dir, report, radiologist, page_channel
):
    name = audio_receive(
        report=report, user=radiologist, data=pcm16(speech_samples("The lungs are clear.")), seq=1
    )
    assert (audio_dir / name).exists()
    channel, receive = page_channel
    publisher = ChannelPublisher()
    try:
        outcome = dictation_transcribe(
            report_id=report.pk, user_id=radiologist.pk, name=name, seq=1, reply_to=channel,
            engine_factory=lambda: tiny_asr, publisher=publisher,
        )  # fmt: skip
    finally:
        publisher.close()
    assert outcome == "transcribed"
    message = receive()
    assert message["type"] == "dictation.transcript" and message["seq"] == 1
    assert message["text"]  # the tiny model's words are meaningless, but there are some
    assert message["operations"][0]["op"] == "insert"
    assert list(audio_dir.iterdir()) == []
    assert descriptions(report) == [
        "Dictated audio received",
        "Dictated audio transcribed",
        "Dictated audio deleted",
    ]
    events = AuditEvent.objects.filter(object_id=str(report.pk), description__startswith="Dictated")
    assert {event.user_id for event in events} == {radiologist.pk}


def test_audio_is_kept_for_the_retention_period_then_swept(
    tiny_asr, audio_dir, report, radiologist, page_channel, settings
):
    settings.MEDPORTAL_AUDIO_RETENTION_SECONDS = 60
    name = audio_receive(report=report, user=radiologist, data=pcm16(speech_samples("No effusion.")), seq=1)
    publisher = ChannelPublisher()
    try:
        dictation_transcribe(
            report_id=report.pk, user_id=radiologist.pk, name=name, seq=1, reply_to=page_channel[0],
            engine_factory=lambda: tiny_asr, publisher=publisher,
        )  # fmt: skip
    finally:
        publisher.close()
    assert (audio_dir / name).exists()
    assert audio_sweep() == 0  # not yet
    old = time.time() - 61
    os.utime(audio_dir / name, (old, old))
    assert audio_sweep() == 1
    assert list(audio_dir.iterdir()) == []
    assert descriptions(report)[-1] == "Dictated audio deleted"


def test_without_the_model_the_page_is_told_why_and_the_audio_still_goes(
    audio_dir, report, radiologist, page_channel
):
    name = audio_receive(
        report=report, user=radiologist, data=pcm16(speech_samples("Heart size normal.")), seq=3
    )

    def no_model():
        raise ModelLoadError("model 'google/medasr' is gated and this token may not download it")

    publisher = ChannelPublisher()
    try:
        outcome = dictation_transcribe(
            report_id=report.pk, user_id=radiologist.pk, name=name, seq=3, reply_to=page_channel[0],
            engine_factory=no_model, publisher=publisher,
        )  # fmt: skip
    finally:
        publisher.close()
    assert outcome == "failed"
    message = page_channel[1]()
    assert message["type"] == "dictation.failed" and "gated" in message["message"]
    assert list(audio_dir.iterdir()) == []
    assert descriptions(report) == [
        "Dictated audio received",
        "Dictated audio not transcribed",
        "Dictated audio deleted",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "not 16-bit PCM"), (b"\x00" * 3, "not 16-bit PCM"), (b"\x00" * (16_000 * 2 * 16), "at most 15 s")],
)
def test_audio_that_is_not_what_the_editor_sends_is_refused_and_nothing_stored(
    audio_dir, report, radiologist, data, message
):
    with pytest.raises(AudioRefused, match=message):
        audio_receive(report=report, user=radiologist, data=data, seq=1)
    assert not audio_dir.exists() or list(audio_dir.iterdir()) == []


def test_a_speech_model_that_cannot_be_had_is_refused_within_seconds(monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        AsrEngine("google/medasr")
    assert time.monotonic() - started < 5
