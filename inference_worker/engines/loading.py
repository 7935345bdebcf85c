"""The process's engine, as the settings say: loaded once per worker process, in the process
that runs the drafts."""

from __future__ import annotations

import threading

from inference_worker.engines.base import Engine, ModelLoadError
from inference_worker.models_table import configured_abilities

_engine: Engine | None = None
_engine_lock = threading.Lock()


def load_engine() -> Engine:
    """A new engine as the settings say: MEDPORTAL_ENGINE=transformers (the default; several
    drafts share one generation, up to MEDPORTAL_BATCH_SIZE) or vllm (the optional extra)."""
    from django.conf import settings

    if settings.MEDPORTAL_ENGINE == "vllm":
        # Imported only here: vllm is an optional extra and needs a GPU.
        from inference_worker.engines.vllm_engine import VLLMEngine

        abilities = configured_abilities()
        images = min(abilities.images, settings.MEDPORTAL_MAX_DRAFT_IMAGES)
        return VLLMEngine(
            settings.MEDPORTAL_MODEL,
            revision=settings.MEDPORTAL_MODEL_REVISION,
            max_num_seqs=settings.MEDPORTAL_BATCH_SIZE,
            # Room for every image the model may be given, its text and the answer.
            max_model_len=min(
                abilities.context,
                max(8192, images * (abilities.image_tokens + 8) + 1024 + settings.MEDPORTAL_MAX_NEW_TOKENS),
            ),
            max_images=images,
            cache_dir=settings.DATA_DIR / "models",
        )
    if settings.MEDPORTAL_ENGINE != "transformers":
        raise ModelLoadError(f"unknown MEDPORTAL_ENGINE {settings.MEDPORTAL_ENGINE!r} (transformers or vllm)")
    from inference_worker.engines.batching import BatchingEngine
    from inference_worker.engines.transformers_engine import TransformersEngine

    return BatchingEngine(
        TransformersEngine(
            settings.MEDPORTAL_MODEL,
            revision=settings.MEDPORTAL_MODEL_REVISION,
            cache_dir=settings.DATA_DIR / "models",
            hub_timeout_s=settings.MEDPORTAL_HUB_CHECK_TIMEOUT_S,
        ),
        max_batch_size=settings.MEDPORTAL_BATCH_SIZE,
        gather_s=settings.MEDPORTAL_BATCH_WAIT_MS / 1000,
    )


def loaded_engine() -> Engine | None:
    """The process's engine if it is loaded, without loading it."""
    return _engine


def get_engine() -> Engine:
    """The process's engine, loaded on first use: once per worker process, in the process
    that runs the drafts (never in one that forks afterwards: CUDA does not survive fork)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = load_engine()
        return _engine
