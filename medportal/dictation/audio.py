"""Dictated audio is PHI: stored only between its arrival and its transcription (longer only as
MEDPORTAL_AUDIO_RETENTION_SECONDS says), in MEDPORTAL_AUDIO_DIR, which no URL serves. Each
piece's arrival, transcription and deletion is audited on its report."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from django.conf import settings

from medportal.audit.models import Action, Outcome
from medportal.reporting.auditing import report_audit
from medportal.reporting.models import Report

SAMPLE_RATE = 16_000
BYTES_PER_SECOND = SAMPLE_RATE * 2  # 16-bit mono PCM
# One piece is an utterance the browser cut at a pause (at most 8 s); a little room above that.
MAX_PIECE_SECONDS = 15
_NAME = re.compile(r"^r(?P<report>\d+)-u(?P<user>\d+)-[0-9a-f]{32}\.pcm$")


class AudioRefused(ValueError):
    """A piece of audio that is not what the editor sends; the message says why."""


def _folder() -> Path:
    folder = Path(settings.MEDPORTAL_AUDIO_DIR)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def audio_path(name: str) -> Path:
    if not _NAME.match(name):
        raise AudioRefused(f"not a dictation audio name: {name!r}")
    return _folder() / name


def audio_receive(*, report: Report, user, data: bytes, seq: int) -> str:
    """Store one piece of 16 kHz mono 16-bit PCM for transcription; its file name."""
    if not data or len(data) % 2:
        raise AudioRefused("The audio is not 16-bit PCM (an odd number of bytes, or none).")
    seconds = len(data) / BYTES_PER_SECOND
    if seconds > MAX_PIECE_SECONDS:
        raise AudioRefused(f"A piece of dictation may be at most {MAX_PIECE_SECONDS} s, not {seconds:.1f} s.")
    name = f"r{report.pk}-u{user.pk}-{uuid.uuid4().hex}.pcm"
    path = _folder() / name
    path.write_bytes(data)
    path.chmod(0o600)
    report_audit(
        report,
        "Dictated audio received",
        action=Action.CREATE,
        user=user,
        detail={"audio": name, "seconds": round(seconds, 2), "piece": seq},
    )
    return name


def audio_transcribed(*, report: Report, user, name: str, model_id: str, seconds: float, chars: int) -> None:
    report_audit(
        report,
        "Dictated audio transcribed",
        action=Action.EXECUTE,
        user=user,
        detail={"audio": name, "model": model_id, "model_seconds": round(seconds, 3), "characters": chars},
    )


def audio_failed(*, report: Report, user, name: str, reason: str) -> None:
    report_audit(
        report,
        "Dictated audio not transcribed",
        action=Action.EXECUTE,
        user=user,
        outcome=Outcome.MINOR_FAILURE,
        detail={"audio": name, "reason": reason[:300]},
    )


def audio_delete(*, name: str, why: str) -> bool:
    """Delete one piece and audit it on its report; False when it was already gone."""
    path = audio_path(name)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    match = _NAME.match(name)
    report = Report.objects.select_related("study__patient").filter(pk=int(match["report"])).first()
    if report is not None:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(pk=int(match["user"])).first()
        report_audit(
            report,
            "Dictated audio deleted",
            action=Action.DELETE,
            user=user,
            detail={"audio": name, "why": why},
        )
    return True


def audio_sweep(*, now: float | None = None) -> int:
    """Delete every piece older than the retention period; how many went."""
    now = time.time() if now is None else now
    keep = settings.MEDPORTAL_AUDIO_RETENTION_SECONDS
    deleted = 0
    for path in _folder().glob("*.pcm"):
        if _NAME.match(path.name) and now - path.stat().st_mtime >= keep:
            deleted += audio_delete(name=path.name, why=f"retention of {keep} s over")
    return deleted
