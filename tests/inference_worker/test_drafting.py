"""Drafting a report: claim, stream coalesced chunks to the group, save, record provenance."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from inference_worker.drafting import draft_run
from inference_worker.engines.base import ModelLoadError
from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Study
from medportal.intake.receive import studies_receive
from medportal.reporting.models import ReportStatus, ReportVersion
from medportal.reporting.services import drafts
from medportal.streaming.publish import ReportPublisher, report_group
from tests.conftest import dicom_bytes


class GroupListener:
    """A real channel on the real channel layer, subscribed to one report's group."""

    def __init__(self, report_id: int):
        self.loop = asyncio.new_event_loop()
        self.layer = get_channel_layer()
        self.channel = self.loop.run_until_complete(self.layer.new_channel())
        self.loop.run_until_complete(self.layer.group_add(report_group(report_id), self.channel))

    def drain(self) -> list[dict]:
        messages = []

        async def receive_all():
            while True:
                try:
                    messages.append(await asyncio.wait_for(self.layer.receive(self.channel), 0.5))
                except TimeoutError:
                    return

        self.loop.run_until_complete(receive_all())
        self.loop.close()
        return messages


@pytest.fixture
def publisher():
    publisher = ReportPublisher()
    yield publisher
    publisher.close()


@pytest.fixture
def queued_report(radiologist, django_capture_on_commit_callbacks):
    _, reports = studies_receive(
        files=[IncomingFile("CT_small.dcm", dicom_bytes("CT_small.dcm"))],
        uploader=radiologist,
        auto_draft=False,
    )
    # CT_small names no body part (medportal.imaging.body_part): the radiologist set it.
    Study.objects.filter(pk=reports[0].study_id).update(body_part="HEAD")
    # The Celery task goes to no worker here: this test runs the worker's function itself.
    return drafts.draft_request(report=reports[0], user=radiologist)


@pytest.mark.django_db
def test_a_draft_streams_in_coalesced_chunks_and_ends_drafted(
    queued_report, tiny_engine, publisher, settings
):
    settings.MEDPORTAL_MAX_NEW_TOKENS = 200
    # Wider than the default 50 ms, so that coalescing shows however slowly a busy machine
    # generates (at 50 ms a token, every token would be a chunk of its own).
    settings.MEDPORTAL_STREAM_INTERVAL_MS = 300
    listener = GroupListener(queued_report.pk)
    outcome = draft_run(
        report_id=queued_report.pk,
        attempt=queued_report.attempt,
        engine_factory=lambda: tiny_engine,
        publisher=publisher,
    )
    assert outcome == "drafted"
    messages = listener.drain()
    chunks = [m for m in messages if m["type"] == "draft.chunk"]
    report = type(queued_report).objects.get(pk=queued_report.pk)
    assert report.status == ReportStatus.DRAFTED
    assert "".join(c["text"] for c in chunks) == report.draft_text
    assert [c["offset"] for c in chunks] == [
        sum(len(c["text"]) for c in chunks[:i]) for i in range(len(chunks))
    ]
    assert [c["seq"] for c in chunks] == list(range(1, len(chunks) + 1))
    # Coalesced: far fewer messages than tokens.
    assert 1 <= len(chunks) < report.generated_tokens / 2
    assert [m["type"] for m in messages].count("draft.state") == 2  # started, ended
    assert report.model_id == "tiny" and report.prompt and report.preprocessing["method"] == "ct-hu-3-windows"
    version = ReportVersion.objects.get(report=report)
    assert (version.number, version.source, version.findings) == (1, "ai", report.findings)


@pytest.mark.django_db
def test_a_redelivered_task_does_not_draft_twice(queued_report, tiny_engine, publisher, settings):
    settings.MEDPORTAL_MAX_NEW_TOKENS = 10
    first = draft_run(
        report_id=queued_report.pk,
        attempt=queued_report.attempt,
        engine_factory=lambda: tiny_engine,
        publisher=publisher,
    )
    second = draft_run(
        report_id=queued_report.pk,
        attempt=queued_report.attempt,
        engine_factory=lambda: tiny_engine,
        publisher=publisher,
    )
    assert (first, second) == ("drafted", "skipped")
    assert ReportVersion.objects.filter(report=queued_report).count() == 1


@pytest.mark.django_db
def test_a_model_that_cannot_load_leaves_a_visible_failure_and_a_retry_works(
    queued_report, tiny_engine, publisher, radiologist, settings, django_capture_on_commit_callbacks
):
    settings.MEDPORTAL_MAX_NEW_TOKENS = 10

    def broken_engine():
        raise ModelLoadError("could not load model 'google/medgemma-4b-it': 401 (set HF_TOKEN)")

    assert (
        draft_run(
            report_id=queued_report.pk,
            attempt=queued_report.attempt,
            engine_factory=broken_engine,
            publisher=publisher,
        )
        == "failed"
    )
    failed = type(queued_report).objects.get(pk=queued_report.pk)
    assert failed.status == ReportStatus.FAILED
    assert "HF_TOKEN" in failed.failure_reason

    retried = drafts.draft_request(report=failed, user=radiologist)
    assert retried.status == ReportStatus.QUEUED and retried.attempt == failed.attempt + 1
    assert (
        draft_run(
            report_id=retried.pk,
            attempt=retried.attempt,
            engine_factory=lambda: tiny_engine,
            publisher=publisher,
        )
        == "drafted"
    )
