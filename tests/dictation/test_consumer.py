"""The dictation websocket over the real Redis channel layer and broker: who may open it, what a
piece of audio becomes (stored, audited, a task on the ASR queue), what is refused."""

from __future__ import annotations

import uuid

import pytest
import redis
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from medportal.asgi import application
from medportal.audit.models import AuditEvent
from tests.conftest import token_header
from tests.dictation.speech import pcm16, speech_samples
from tests.streaming.test_consumer import make_report

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def asr_queue(settings, tmp_path):
    settings.MEDPORTAL_ASR_QUEUE = f"test-asr-{uuid.uuid4().hex[:8]}"
    settings.MEDPORTAL_AUDIO_DIR = tmp_path / "audio"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield broker, settings.MEDPORTAL_ASR_QUEUE
    broker.delete(settings.MEDPORTAL_ASR_QUEUE)


async def open_dictation(report_id: int, user) -> WebsocketCommunicator:
    header = await database_sync_to_async(token_header)(user)
    headers = [(b"authorization", header["HTTP_AUTHORIZATION"].encode())]
    return WebsocketCommunicator(application, f"/ws/dictation/{report_id}/", headers=headers)


async def test_a_technologist_may_not_dictate_and_the_refusal_is_audited(radiologist, technologist):
    report = await database_sync_to_async(make_report)(radiologist)
    socket = await open_dictation(report.pk, technologist)
    connected, code = await socket.connect()
    assert not connected and code == 4403
    refused = AuditEvent.objects.filter(description="Dictation refused", object_id=str(report.pk), outcome=4)
    assert await database_sync_to_async(refused.count)() == 1


async def test_an_utterance_is_stored_audited_and_queued_for_the_speech_model(
    radiologist, asr_queue, settings
):
    broker, queue = asr_queue
    report = await database_sync_to_async(make_report)(radiologist)
    socket = await open_dictation(report.pk, radiologist)
    connected, _ = await socket.connect()
    assert connected
    await socket.send_to(bytes_data=b"\x00\x01\x02")
    assert await socket.receive_json_from() == {
        "type": "error",
        "message": "The audio is not 16-bit PCM (an odd number of bytes, or none).",
        "seq": 1,
    }
    await socket.send_to(bytes_data=pcm16(speech_samples("The lungs are clear.")))
    assert await socket.receive_json_from() == {"type": "received", "seq": 2}
    (stored,) = list(settings.MEDPORTAL_AUDIO_DIR.iterdir())
    assert stored.stat().st_mode & 0o077 == 0  # readable by the service only
    assert broker.llen(queue) == 1
    received = AuditEvent.objects.filter(description="Dictated audio received", object_id=str(report.pk))
    assert await database_sync_to_async(received.count)() == 1
    await socket.disconnect()


async def test_an_impression_without_findings_is_refused_with_the_reason(radiologist):
    report = await database_sync_to_async(make_report)(radiologist)
    socket = await open_dictation(report.pk, radiologist)
    await socket.connect()
    await socket.send_json_to({"type": "impression", "findings": "  "})
    assert await socket.receive_json_from() == {
        "type": "error",
        "message": "Write the Findings first: the Impression is written from them.",
        "about": "impression",
    }
    await socket.disconnect()
