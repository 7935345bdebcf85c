"""Dictation audio for tests and the bench: espeak-ng's voice (a real recording of speech would be
PHI-free too, but none ships), 16 kHz mono 16-bit, as the browser sends it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

RATE = 16_000


def speech_samples(text: str) -> np.ndarray:
    """``text`` spoken by espeak-ng (a tone pattern where it is not installed), float32 at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        seconds = max(1.0, len(text.split()) * 0.35)
        t = np.arange(int(seconds * RATE)) / RATE
        return (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "speech.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(out), text], check=True, capture_output=True)
        with wave.open(str(out)) as wav:
            rate = wav.getframerate()
            data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float32) / 32768
    times = np.arange(int(len(data) * RATE / rate)) / RATE
    return np.interp(times, np.arange(len(data)) / rate, data).astype(np.float32)


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def wav_write(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm16(samples))
    return path
