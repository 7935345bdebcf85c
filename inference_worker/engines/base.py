"""What every engine offers the drafting code: one streaming call and the model's identity."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from PIL import Image


class ModelLoadError(Exception):
    """The configured model could not be loaded."""


class PromptTooLong(ValueError):
    """The prompt and the answer it asks for do not fit in the model's context."""


# The user turn: text and images, in the order the model reads them.
Parts = Sequence[str | Image.Image]


def user_content(parts: Parts) -> list[dict]:
    """The user turn's content for a chat template: one text or image item per part."""
    return [
        {"type": "text", "text": part} if isinstance(part, str) else {"type": "image", "image": part}
        for part in parts
        if not isinstance(part, str) or part
    ]


@dataclass
class Generation:
    """One streaming generation: iterate for text pieces; figures are set when it ends."""

    pieces: Iterator[str]
    prompt_tokens: int
    generated_tokens: int = 0
    time_to_first_token_s: float | None = None
    duration_s: float | None = None
    params: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator[str]:
        return self.pieces

    def close(self) -> None:
        """Stop early: the engine stops generating for this request."""
        close = getattr(self.pieces, "close", None)
        if close:
            close()

    @property
    def tokens_per_second(self) -> float | None:
        if not self.duration_s or not self.generated_tokens:
            return None
        return self.generated_tokens / self.duration_s


@runtime_checkable
class Engine(Protocol):
    """A loaded model. ``stream`` may be called from several threads at once; the text of
    each call depends only on its own arguments (greedy decoding), never on its neighbours."""

    model_id: str
    revision: str
    device: str

    def stream(self, *, system: str, parts: Parts, max_new_tokens: int) -> Generation:
        """Start generating for one user turn of ``parts`` (text and images, in order);
        iterating the result yields the text as it comes, and raises
        ``RuntimeError("generation failed: ...")`` when this request fails. A prompt that with
        ``max_new_tokens`` exceeds the model's context raises ``PromptTooLong`` at once."""
        ...
