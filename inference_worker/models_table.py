"""What each model can take: the one table the worker asks (never a test on a model's name
anywhere else).

``images``: the most images one request may carry (a one-image model drafts a CT or MR from
one representative slice, as MedPortal always did); ``volumes``: it reads a CT/MR series as
up to 85 slices in one request; ``priors``: it compares a chest X-ray with the prior one
(longitudinal CXR); ``thinking``: it may think before answering (the system prompt asks it
to think silently, and the trace is kept out of the report); ``context``: its context in
tokens; ``image_tokens``: the tokens one image takes in the prompt.

A model that is not in the table (a local copy, a fine-tune) gets ``DEFAULT``: one image,
no volumes, no priors, no thinking. MEDPORTAL_MODEL_LIKE names a model of the table whose
abilities it has instead (e.g. a local copy of ``google/medgemma-1.5-4b-it``).
"""

from __future__ import annotations

from dataclasses import dataclass

from inference_worker.tiny_model import TINY_MODEL_ID


@dataclass(frozen=True)
class ModelAbilities:
    images: int
    volumes: bool
    priors: bool
    thinking: bool
    context: int
    image_tokens: int


MODELS: dict[str, ModelAbilities] = {
    "google/medgemma-4b-it": ModelAbilities(
        images=1, volumes=False, priors=False, thinking=False, context=131_072, image_tokens=256
    ),
    "google/medgemma-1.5-4b-it": ModelAbilities(
        images=86, volumes=True, priors=True, thinking=True, context=131_072, image_tokens=256
    ),
    "google/medgemma-27b-it": ModelAbilities(
        images=1, volumes=False, priors=False, thinking=False, context=131_072, image_tokens=256
    ),
    # The tiny test model takes several images, so that tests run the multi-image path; its
    # context is its max_position_embeddings (tiny_model.py), 16 tokens per image.
    TINY_MODEL_ID: ModelAbilities(
        images=86, volumes=True, priors=True, thinking=False, context=4096, image_tokens=16
    ),
}

DEFAULT = ModelAbilities(
    images=1, volumes=False, priors=False, thinking=False, context=8192, image_tokens=256
)


class UnknownModelLike(ValueError):
    pass


def model_abilities(model_ref: str, *, like: str = "") -> ModelAbilities:
    """The abilities of ``model_ref`` (MEDPORTAL_MODEL), or of ``like`` (MEDPORTAL_MODEL_LIKE)."""
    if like:
        if like not in MODELS:
            raise UnknownModelLike(
                f"MEDPORTAL_MODEL_LIKE={like!r} is not a model MedPortal knows; one of: {', '.join(MODELS)}"
            )
        return MODELS[like]
    return MODELS.get(model_ref, DEFAULT)


def configured_abilities() -> ModelAbilities:
    """The abilities of the model this process is configured with."""
    from django.conf import settings

    return model_abilities(settings.MEDPORTAL_MODEL, like=settings.MEDPORTAL_MODEL_LIKE)
