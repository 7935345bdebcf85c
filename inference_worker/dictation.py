"""The ASR worker's work: one piece of dictated audio to text and editor operations, sent back to
the page that recorded it; and the Impression from the Findings, for the drafting worker."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model

from inference_worker.asr import AsrEngine, pcm16_samples
from inference_worker.engines.base import Engine
from inference_worker.impression import PROMPT_NAME, impression_write
from inference_worker.models_table import model_abilities
from medportal.audit.models import Action, Outcome
from medportal.dictation.audio import audio_delete, audio_failed, audio_path, audio_sweep, audio_transcribed
from medportal.dictation.commands import transcript_operations
from medportal.dictation.publish import ChannelPublisher
from medportal.reporting.auditing import report_audit
from medportal.reporting.models import Report

logger = logging.getLogger(__name__)


def _report_and_user(report_id: int, user_id: int):
    report = Report.objects.select_related("study__patient").get(pk=report_id)
    return report, get_user_model().objects.filter(pk=user_id).first()


def dictation_transcribe(
    *,
    report_id: int,
    user_id: int,
    name: str,
    seq: int,
    reply_to: str,
    engine_factory: Callable[[], AsrEngine],
    publisher: ChannelPublisher,
) -> str:
    """Transcribe one stored piece, answer the page, delete the audio unless it is to be kept."""
    report, user = _report_and_user(report_id, user_id)
    try:
        engine = engine_factory()
        transcript = engine.transcribe(pcm16_samples(audio_path(name).read_bytes()))
    except Exception as exc:
        logger.exception("dictation %s of report %s failed", name, report_id)
        reason = str(exc) or type(exc).__name__
        audio_failed(report=report, user=user, name=name, reason=reason)
        publisher.send(
            reply_to, {"type": "dictation.failed", "seq": seq, "message": f"Not transcribed: {reason}"}
        )
        outcome = "failed"
    else:
        publisher.send(
            reply_to,
            {
                "type": "dictation.transcript",
                "seq": seq,
                "text": transcript.text,
                "operations": transcript_operations(transcript.text),
                "model_ms": round(transcript.seconds * 1000, 1),
            },
        )
        audio_transcribed(
            report=report, user=user, name=name, model_id=engine.model_id, seconds=transcript.seconds,
            chars=len(transcript.text),
        )  # fmt: skip
        outcome = "transcribed"
    if settings.MEDPORTAL_AUDIO_RETENTION_SECONDS == 0:
        audio_delete(name=name, why="transcribed" if outcome == "transcribed" else "not transcribed")
    else:
        audio_sweep()
    return outcome


def impression_run(
    *,
    report_id: int,
    user_id: int,
    findings: str,
    reply_to: str,
    engine_factory: Callable[[], Engine],
    publisher: ChannelPublisher,
) -> str:
    """Write the Impression from ``findings`` and stream it to the page; nothing is saved."""
    report, user = _report_and_user(report_id, user_id)
    try:
        engine = engine_factory()
        abilities = model_abilities(engine.model_id, like=settings.MEDPORTAL_MODEL_LIKE)
        result = impression_write(
            findings=findings,
            engine=engine,
            thinking=abilities.thinking,
            send=lambda text: publisher.send(reply_to, {"type": "impression.chunk", "text": text}),
            max_new_tokens=settings.MEDPORTAL_MAX_NEW_TOKENS,
        )
    except Exception as exc:
        logger.exception("impression of report %s failed", report_id)
        reason = str(exc) or type(exc).__name__
        report_audit(
            report, "Impression from findings failed", action=Action.EXECUTE, user=user,
            outcome=Outcome.MINOR_FAILURE, detail={"prompt": PROMPT_NAME, "reason": reason[:300]},
        )  # fmt: skip
        publisher.send(reply_to, {"type": "impression.failed", "message": reason})
        return "failed"
    publisher.send(reply_to, {"type": "impression.end", "text": result.text})
    report_audit(
        report,
        "Impression written from the findings (not saved)",
        action=Action.EXECUTE,
        user=user,
        detail={
            "prompt": PROMPT_NAME,
            "model": engine.model_id,
            "revision": engine.revision,
            "findings_characters": len(findings),
            "characters": len(result.text),
            "tokens": result.generated_tokens,
            "thinking_characters": len(result.thinking),
        },
    )
    return "written"
