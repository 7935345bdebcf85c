"""MedASR, loaded as the drafting model is: once per ASR worker process, from MEDPORTAL_ASR_MODEL
(a hub id, gated: the same fast check that the model can be had; a local folder; or ``tiny``)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference_worker.engines.base import ModelLoadError
from inference_worker.engines.transformers_engine import how_to_get_a_model, hub_check
from inference_worker.tiny_asr_model import TINY_ASR_ID, build_tiny_asr_model

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Transcript:
    text: str
    seconds: float  # the model's own time


class AsrEngine:
    """``pipeline("automatic-speech-recognition")`` over a ``lasr_ctc`` model: 16 kHz mono in,
    text out. One call at a time (the pipeline is not thread-safe)."""

    def __init__(self, model_ref: str, *, cache_dir: Path | None = None, hub_timeout_s: float = 5.0):
        import torch
        from transformers import pipeline

        self.model_id = model_ref
        source: str | Path = model_ref
        if model_ref == TINY_ASR_ID:
            source = build_tiny_asr_model((cache_dir or Path(".")) / "tiny-medasr")
        elif not Path(model_ref).exists():
            hub_check(model_ref, timeout_s=hub_timeout_s, setting="MEDPORTAL_ASR_MODEL")
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.pipe = pipeline("automatic-speech-recognition", model=str(source), device=self.device)
        except Exception as exc:
            hint = "" if Path(str(source)).exists() else f" ({how_to_get_a_model('MEDPORTAL_ASR_MODEL')})"
            raise ModelLoadError(f"could not load speech model {model_ref!r}: {exc}{hint}") from exc
        self._lock = threading.Lock()
        logger.info("speech model %s loaded on %s", self.model_id, self.device)

    def transcribe(self, samples: np.ndarray) -> Transcript:
        """The text of ``samples``: float32 mono at 16 kHz, −1…1."""
        started = time.perf_counter()
        with self._lock:
            text = self.pipe({"raw": samples, "sampling_rate": SAMPLE_RATE})["text"]
        return Transcript(text=text.strip(), seconds=time.perf_counter() - started)


_engine: AsrEngine | None = None
_engine_lock = threading.Lock()


def get_asr_engine() -> AsrEngine:
    """The process's speech model, loaded on first use (at start-up in an ASR worker)."""
    from django.conf import settings

    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = AsrEngine(
                settings.MEDPORTAL_ASR_MODEL,
                cache_dir=settings.DATA_DIR / "models",
                hub_timeout_s=settings.MEDPORTAL_HUB_CHECK_TIMEOUT_S,
            )
        return _engine


def pcm16_samples(data: bytes) -> np.ndarray:
    """16-bit little-endian PCM (what the browser sends) as float32 −1…1."""
    if len(data) % 2:
        raise ValueError("16-bit PCM audio has an even number of bytes")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
