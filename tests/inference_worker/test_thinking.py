"""A thinking model's trace never reaches the stream, the saved text or the exports; it is
kept in the draft's provenance."""

from __future__ import annotations

import pytest

from inference_worker.drafting import DraftStream
from inference_worker.prompts import THINKING_PREFIX, prompt_for
from inference_worker.thinking import ThinkingStripper
from medportal.imaging.ingest import IncomingFile
from medportal.intake.receive import studies_receive
from medportal.reporting.models import Report
from medportal.reporting.provenance import report_provenance
from medportal.reporting.services import drafts
from medportal.streaming.publish import ReportPublisher
from tests.conftest import dicom_bytes
from tests.inference_worker.test_drafting import GroupListener

# As MedGemma 1.5 writes it: the trace between <unused94>thought and <unused95>, then the answer.
ANSWER = "FINDINGS: The lungs are clear.\nIMPRESSION: Normal chest."
TRACE = "Let me check the costophrenic angles <unused9 first: sharp."
OUTPUT = f"<unused94>thought\n{TRACE}<unused95>\n\n{ANSWER}"


@pytest.mark.parametrize("size", [1, 2, 3, 7, 11, len(OUTPUT)])
def test_the_trace_is_stripped_whatever_the_pieces(size):
    stripper = ThinkingStripper()
    visible = "".join(stripper.feed(OUTPUT[i : i + size]) for i in range(0, len(OUTPUT), size))
    visible += stripper.finish()
    assert visible == ANSWER
    assert stripper.thinking == TRACE and not stripper.unfinished


def test_nothing_is_released_while_it_may_still_be_a_delimiter():
    stripper = ThinkingStripper()
    assert stripper.feed("<unu") == ""  # held: it may open a trace
    assert stripper.feed("sed94>thought secret") == ""
    assert stripper.feed(" more<unused95>Answer") == "Answer"


def test_a_trace_cut_off_by_the_token_limit_stays_a_trace():
    stripper = ThinkingStripper()
    assert stripper.feed("<unused94>thought\nstill thinking about") == ""
    assert stripper.finish() == ""
    assert stripper.unfinished and stripper.thinking == "still thinking about"


def test_a_thinking_model_is_asked_to_think_silently():
    prompt = prompt_for(modality="CR", body_part="CHEST", thinking=True)
    assert prompt.system == THINKING_PREFIX + "You are an expert radiologist."
    assert prompt.system.startswith("SYSTEM INSTRUCTION: think silently if needed.")
    assert prompt_for(modality="CR", body_part="CHEST").system == "You are an expert radiologist."


@pytest.mark.django_db
def test_the_trace_never_reaches_the_stream_or_the_stored_text(
    radiologist, django_capture_on_commit_callbacks
):
    _, reports = studies_receive(
        files=[IncomingFile("CT_small.dcm", dicom_bytes("CT_small.dcm"))],
        uploader=radiologist,
        auto_draft=False,
    )
    report = drafts.draft_request(report=reports[0], user=radiologist)
    claim = drafts.draft_start(report_id=report.pk, attempt=report.attempt)
    listener = GroupListener(report.pk)
    publisher = ReportPublisher()
    stream = DraftStream(claim=claim, publisher=publisher, publish_interval_s=0, save_interval_s=0)
    stripper = ThinkingStripper()
    try:
        for i in range(0, len(OUTPUT), 4):  # as the drafting loop feeds the engine's pieces
            stream.feed(stripper.feed(OUTPUT[i : i + 4]))
            saved = Report.objects.get(pk=report.pk).draft_text
            assert "unused" not in saved and "costophrenic" not in saved
        stream.feed(stripper.finish())
        stream.flush()
        drafts.draft_finish(
            claim=claim,
            text=stream.text,
            provenance=drafts.DraftProvenance(
                model_id="google/medgemma-1.5-4b-it",
                model_revision="r1",
                prompt="p",
                generation_params={},
                thinking=stripper.thinking,
            ),
        )
    finally:
        publisher.close()

    chunks = [m["text"] for m in listener.drain() if m["type"] == "draft.chunk"]
    assert "".join(chunks) == ANSWER
    drafted = Report.objects.get(pk=report.pk)
    assert drafted.draft_text == ANSWER
    assert (drafted.findings, drafted.impression) == ("The lungs are clear.", "Normal chest.")
    assert drafted.draft_thinking == TRACE  # kept as provenance
    assert "costophrenic" not in str(report_provenance(drafted))  # exports carry no trace
