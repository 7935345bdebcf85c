"""What every engine offers the drafting code: one streaming call and the model's identity."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from PIL import Image


class ModelLoadError(Exception):
    """The configured model could not be loaded."""


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

    def stream(self, *, system: str, instruction: str, image: Image.Image, max_new_tokens: int) -> Generation:
        """Start generating; iterating the result yields the text as it comes, and raises
        ``RuntimeError("generation failed: ...")`` when this request fails."""
        ...
