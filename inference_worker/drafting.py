"""Drafting one report: claim it, run the model, stream chunks, save, finish."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from django.conf import settings

from inference_worker import leases
from inference_worker.draft_inputs import draft_input
from inference_worker.engines.base import Engine
from inference_worker.models_table import model_abilities
from inference_worker.thinking import ThinkingStripper
from medportal.audit.models import Action, EventType
from medportal.imaging.auditing import study_audit
from medportal.reporting.models import Report
from medportal.reporting.services import drafts
from medportal.streaming.publish import ReportPublisher

logger = logging.getLogger(__name__)


class DraftStream:
    """Coalesces generated pieces into chunks (one message per interval, not per token)
    and saves the text so far to the database at least every save interval."""

    def __init__(
        self,
        *,
        claim: drafts.DraftClaim,
        publisher: ReportPublisher,
        publish_interval_s: float,
        save_interval_s: float,
    ):
        self.claim = claim
        self.publisher = publisher
        self.publish_interval_s = publish_interval_s
        self.save_interval_s = save_interval_s
        self.text = ""
        self.seq = 0
        self._published = 0  # characters already sent
        self._saved = 0
        self._last_publish = self._last_save = time.monotonic()
        self.superseded = False

    def feed(self, piece: str) -> None:
        if not piece:
            return
        self.text += piece
        now = time.monotonic()
        # The first piece goes at once (time to first token); later ones once per interval.
        if self.seq == 0 or now - self._last_publish >= self.publish_interval_s:
            self.flush()
        if now - self._last_save >= self.save_interval_s and self._saved < len(self.text):
            self._save()

    def flush(self) -> None:
        self._last_publish = time.monotonic()
        if self._published == len(self.text):
            return
        self.seq += 1
        self.publisher.chunk(
            report_id=self.claim.report_id,
            attempt=self.claim.attempt,
            stream=self.claim.stream,
            seq=self.seq,
            offset=self._published,
            text=self.text[self._published :],
        )
        self._published = len(self.text)

    def _save(self) -> None:
        self._last_save = time.monotonic()
        if not drafts.draft_progress(claim=self.claim, text=self.text):
            self.superseded = True  # redrafted, or claimed again by a redelivered task
        self._saved = len(self.text)


def _expecting(engine: Engine | None) -> AbstractContextManager:
    """A batching engine's announcement that a request is on its way (others: nothing)."""
    expecting = getattr(engine, "expecting", None)
    return expecting() if expecting else nullcontext()


def draft_run(
    *,
    report_id: int,
    attempt: int,
    engine_factory: Callable[[], Engine],
    publisher: ReportPublisher,
) -> str:
    """Run one draft attempt. Returns what happened: drafted, failed, skipped or superseded."""
    engine: Engine | None = None
    load_error: Exception | None = None
    try:
        engine = engine_factory()
    except Exception as exc:  # reported on the draft below, once it is claimed
        load_error = exc
    # Announced before the claim and the image work, so that drafts this worker took
    # together start in one batch.
    with _expecting(engine):
        return _draft(
            report_id=report_id, attempt=attempt, engine=engine, load_error=load_error, publisher=publisher
        )


def _draft(
    *,
    report_id: int,
    attempt: int,
    engine: Engine | None,
    load_error: Exception | None,
    publisher: ReportPublisher,
) -> str:
    claim = drafts.draft_start(report_id=report_id, attempt=attempt)
    if claim is None:
        logger.info("report %s attempt %s is not claimable; skipping", report_id, attempt)
        publisher.state_changed(report_id=report_id)
        return "skipped"
    publisher.state_changed(report_id=report_id)
    leases.hold(claim)  # renewed while this process lives
    try:
        if engine is None:
            raise load_error or RuntimeError("no engine")
        report = Report.objects.select_related("study__patient", "prior_study").get(pk=report_id)
        abilities = model_abilities(engine.model_id, like=settings.MEDPORTAL_MODEL_LIKE)
        # The study is refused (modality, body part, too many images) before any image work.
        given = draft_input(report=report, abilities=abilities)
        # The worker read the patient's study (indication, images, a prior) for the prompt:
        # audited as the worker process (medportal.audit.actors), naming what it read.
        study_audit(
            report.study,
            "Study read for an AI draft",
            event_type=EventType.INSTANCES_ACCESSED,
            action=Action.READ,
            detail={
                "report": report_id,
                "attempt": attempt,
                "claim": claim.number,
                "images": len(given.images),
                "prior_study_uid": (given.preprocessing.get("prior") or {}).get("study_uid"),
            },
        )
        generation = engine.stream(
            system=given.prompt.system, parts=given.parts, max_new_tokens=settings.MEDPORTAL_MAX_NEW_TOKENS
        )
        stream = DraftStream(
            claim=claim,
            publisher=publisher,
            publish_interval_s=settings.MEDPORTAL_STREAM_INTERVAL_MS / 1000,
            save_interval_s=settings.MEDPORTAL_SAVE_INTERVAL_MS / 1000,
        )
        if given.comparison:
            stream.feed(f"COMPARISON: {given.comparison}\n\n")
        # A thinking model's trace never reaches the stream or the text: only its answer does.
        answer = ThinkingStripper()
        for piece in generation:
            stream.feed(answer.feed(piece))
            if stream.superseded:
                generation.close()
                return "superseded"
        stream.feed(answer.finish())
        if answer.unfinished:
            raise RuntimeError(
                f"the model was still thinking when it reached MEDPORTAL_MAX_NEW_TOKENS "
                f"({settings.MEDPORTAL_MAX_NEW_TOKENS} tokens) and wrote no report: raise it, then retry"
            )
        stream.flush()
        template = given.template
        finished = drafts.draft_finish(
            claim=claim,
            text=stream.text,
            provenance=drafts.DraftProvenance(
                model_id=engine.model_id,
                model_revision=engine.revision,
                prompt=given.prompt.as_record(given.images_note),
                generation_params=generation.params,
                preprocessing=given.preprocessing,
                time_to_first_token_ms=(
                    generation.time_to_first_token_s * 1000 if generation.time_to_first_token_s else None
                ),
                tokens_per_second=generation.tokens_per_second,
                generated_tokens=generation.generated_tokens,
                template_id=template.pk if template else None,
                template_name=template.name if template else "",
                sections=given.sections,
                thinking=answer.thinking,
                comparison=given.comparison,
            ),
        )
        return "drafted" if finished else "superseded"
    except Exception as exc:
        logger.exception("draft of report %s failed", report_id)
        drafts.draft_fail(
            report_id=report_id, attempt=attempt, claim=claim, reason=str(exc) or type(exc).__name__
        )
        return "failed"
    finally:
        leases.release(claim)
        publisher.state_changed(report_id=report_id)
