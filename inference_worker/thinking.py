"""A thinking model's trace kept out of the report, as the text streams.

MedGemma 1.5 (Gemma 3's reserved tokens) writes its thinking as ``<unused94>thought\\n …
<unused95>`` before the answer. They are ordinary vocabulary tokens, not special ones, so
they survive ``skip_special_tokens`` decoding and mark the trace in the decoded text.

The stripper is fed the streamed pieces and returns only the answer's text. It holds back
what may still become a delimiter (a piece ending in "<unus") until the next piece says, so
no character of the trace ever reaches the stream, the saved text, an export or HL7; the
trace itself is kept (``thinking``) for the draft's provenance.
"""

from __future__ import annotations

THOUGHT_START = "<unused94>"
THOUGHT_END = "<unused95>"


def _held(text: str, delimiter: str) -> int:
    """How many characters at the end of ``text`` may be the start of ``delimiter``."""
    for length in range(min(len(text), len(delimiter) - 1), 0, -1):
        if delimiter.startswith(text[-length:]):
            return length
    return 0


class ThinkingStripper:
    def __init__(self) -> None:
        self._pending = ""
        self._inside = False
        self._thought: list[str] = []
        self._answer_started = False

    def feed(self, piece: str) -> str:
        """The answer's text that ``piece`` completes (possibly "")."""
        self._pending += piece
        visible: list[str] = []
        while self._pending:
            delimiter = THOUGHT_END if self._inside else THOUGHT_START
            at = self._pending.find(delimiter)
            if at < 0:
                keep = _held(self._pending, delimiter)
                ready, self._pending = (
                    self._pending[: len(self._pending) - keep],
                    self._pending[len(self._pending) - keep :],
                )
                (self._thought if self._inside else visible).append(ready)
                break
            (self._thought if self._inside else visible).append(self._pending[:at])
            if self._inside:
                self._thought.append("\n")
            self._pending = self._pending[at + len(delimiter) :]
            self._inside = not self._inside
        return self._answer("".join(visible))

    def finish(self) -> str:
        """The text held back when generation ended (a trace left open stays a trace)."""
        rest, self._pending = self._pending, ""
        if self._inside:
            self._thought.append(rest)
            return ""
        return self._answer(rest)

    def _answer(self, text: str) -> str:
        # The answer after a trace starts with the line breaks that closed it.
        if not self._answer_started:
            text = text.lstrip()
            self._answer_started = bool(text)
        return text

    @property
    def unfinished(self) -> bool:
        """Generation ended inside the trace: the model never answered."""
        return self._inside

    @property
    def thinking(self) -> str:
        """The trace, without its "thought" label."""
        trace = "".join(self._thought).strip()
        return trace.removeprefix("thought").strip()
