"""The Impression written from the Findings the radiologist has written: text only, by the
drafting model (the process's engine), streamed to the page that asked; a thinking model's trace
is kept out. The prompt has a name and version, recorded in the audit trail with each use."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from inference_worker.engines.base import Engine
from inference_worker.prompts import SYSTEM_PROMPT, THINKING_PREFIX, prompt_safe
from inference_worker.thinking import ThinkingStripper

logger = logging.getLogger(__name__)

PROMPT_NAME = "impression-from-findings-v1"
_INSTRUCTION = (
    "Below are the FINDINGS of a radiology report written by a radiologist. Write the IMPRESSION: "
    "a short numbered list of the most important conclusions, most important first, using only "
    "what the findings say. Write the impression text only, without a heading."
)
# An impression is short: this many tokens at most, whatever drafts may take.
MAX_IMPRESSION_TOKENS = 256
# One message to the page per interval, not per token.
PUBLISH_INTERVAL_S = 0.05


@dataclass(frozen=True)
class ImpressionPrompt:
    system: str
    user: str

    def as_record(self) -> str:
        return f"[{PROMPT_NAME}]\nSYSTEM: {self.system}\nUSER: {self.user}"


def impression_prompt(*, findings: str, thinking: bool = False) -> ImpressionPrompt:
    system = (THINKING_PREFIX if thinking else "") + SYSTEM_PROMPT
    return ImpressionPrompt(
        system=system, user=f"{_INSTRUCTION}\n\nFINDINGS:\n{prompt_safe(findings).strip()}"
    )


@dataclass
class ImpressionResult:
    text: str
    thinking: str
    generated_tokens: int
    seconds: float


def impression_write(
    *, findings: str, engine: Engine, thinking: bool, send: Callable[[str], None], max_new_tokens: int
) -> ImpressionResult:
    """Generate the Impression from ``findings``, calling ``send`` with each new piece of text."""
    if not findings.strip():
        raise ValueError("Write the Findings first: the Impression is written from them.")
    started = time.perf_counter()
    prompt = impression_prompt(findings=findings, thinking=thinking)
    generation = engine.stream(
        system=prompt.system, parts=[prompt.user], max_new_tokens=min(max_new_tokens, MAX_IMPRESSION_TOKENS)
    )
    answer = ThinkingStripper()
    text, pending, last = "", "", 0.0
    for piece in generation:
        pending += answer.feed(piece)
        if pending and (not text or time.monotonic() - last >= PUBLISH_INTERVAL_S):
            send(pending)
            text, pending, last = text + pending, "", time.monotonic()
    pending += answer.finish()
    if pending:
        send(pending)
        text += pending
    if answer.unfinished:
        raise RuntimeError(
            "the model was still thinking when it reached its token limit and wrote no impression"
        )
    return ImpressionResult(
        text=text,
        thinking=answer.thinking,
        generated_tokens=generation.generated_tokens,
        seconds=time.perf_counter() - started,
    )
