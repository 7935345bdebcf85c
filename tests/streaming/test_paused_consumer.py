"""A consumer that cannot keep up loses channel messages (the layer drops beyond its capacity);
the client notices the gap by offset and re-reads the text from the database."""

from __future__ import annotations

import threading

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from medportal.asgi import application
from medportal.imaging.ingest import IncomingFile
from medportal.intake.receive import studies_receive
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.services import drafts
from medportal.streaming.publish import ReportPublisher
from tests.conftest import dicom_bytes, token_header

pytestmark = pytest.mark.django_db(transaction=True)
CHUNKS = 1000


@pytest.fixture
def small_channel_capacity(settings):
    layers = {**settings.CHANNEL_LAYERS}
    layers["default"] = {**layers["default"], "CONFIG": {**layers["default"]["CONFIG"], "capacity": 100}}
    settings.CHANNEL_LAYERS = layers  # channels rebuilds its layers when this setting changes


def claimed_report(user) -> tuple[Report, drafts.DraftClaim]:
    _, reports = studies_receive(
        files=[IncomingFile("CT.dcm", dicom_bytes("CT_small.dcm"))], uploader=user, auto_draft=False
    )
    # Queue it by hand: no Celery task, this test plays the worker.
    Report.objects.filter(pk=reports[0].pk).update(status=ReportStatus.QUEUED, attempt=1)
    return reports[0], drafts.draft_start(report_id=reports[0].pk, attempt=1)


def play_worker(claim: drafts.DraftClaim) -> str:
    """Send CHUNKS chunks as a worker does, saving the text every 50, then finish."""
    publisher = ReportPublisher()
    text = ""
    for seq in range(1, CHUNKS + 1):
        piece = f"word{seq} "
        publisher.chunk(
            report_id=claim.report_id,
            attempt=claim.attempt,
            stream=claim.stream,
            seq=seq,
            offset=len(text),
            text=piece,
        )
        text += piece
        if seq % 50 == 0:
            drafts.draft_progress(claim=claim, text=text)
    drafts.draft_finish(
        claim=claim,
        text=text,
        provenance=drafts.DraftProvenance(
            model_id="tiny", model_revision="r", prompt="p", generation_params={}
        ),
    )
    publisher.state_changed(report_id=claim.report_id)
    publisher.close()
    return text


async def test_a_paused_consumer_still_ends_with_the_database_text(radiologist, small_channel_capacity):
    report, claim = await database_sync_to_async(claimed_report)(radiologist)
    header = await database_sync_to_async(token_header)(radiologist)
    stream = WebsocketCommunicator(
        application,
        f"/ws/reports/{report.pk}/",
        headers=[(b"authorization", header["HTTP_AUTHORIZATION"].encode())],
    )
    assert (await stream.connect())[0]
    text = (await stream.receive_json_from(timeout=5))["text"]

    # The consumer runs on this test's event loop: blocking it here pauses the consumer
    # while the "worker" thread sends every chunk.
    result: dict = {}
    worker = threading.Thread(target=lambda: result.setdefault("text", play_worker(claim)))
    worker.start()
    worker.join()

    chunks_seen, gaps, final = 0, 0, None
    resyncs_on_silence = 0
    while final is None:
        if await stream.receive_nothing(timeout=2):
            # Silence while drafting: the end may have been dropped too; ask (as the page does).
            resyncs_on_silence += 1
            assert resyncs_on_silence < 5
            await stream.send_json_to({"type": "resync"})
            continue
        message = await stream.receive_json_from(timeout=5)
        if message["type"] == "chunk":
            chunks_seen += 1
            if message["offset"] > len(text):
                gaps += 1
                await stream.send_json_to({"type": "resync"})
            elif message["offset"] + len(message["text"]) > len(text):
                text += message["text"][len(text) - message["offset"] :]
        elif message["status"] == ReportStatus.DRAFTED:
            final = message["text"]
    await stream.disconnect()

    stored = await database_sync_to_async(lambda: Report.objects.get(pk=report.pk).draft_text)()
    assert chunks_seen < CHUNKS, "the layer should have dropped messages for the paused consumer"
    assert final == stored == result["text"]
    assert text == stored[: len(text)]  # what was merged live was never wrong, only short
