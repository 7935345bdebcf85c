"""The transformers engine: loads a Gemma 3 vision-language model once and streams text.
(``engines.loading`` builds the process's engine: this one behind a batching wrapper by
default, or vLLM.)"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from inference_worker.engines.base import Generation, ModelLoadError, Parts, PromptTooLong, user_content
from inference_worker.tiny_model import TINY_MODEL_ID, build_tiny_model

logger = logging.getLogger(__name__)

# How long the streamer waits for the next token before concluding generation died.
TOKEN_TIMEOUT_S = 120.0


def how_to_get_a_model(setting: str = "MEDPORTAL_MODEL") -> str:
    """What to set when a model cannot be had; ``setting`` names the variable that chose it."""
    return (
        f"set HF_TOKEN (with the model's licence accepted on huggingface.co), or {setting} to a local "
        f"copy of the model, or {setting}=tiny for a demo with meaningless text"
    )


def hub_check(
    model_ref: str, *, revision: str | None = None, timeout_s: float = 5.0, setting: str = "MEDPORTAL_MODEL"
) -> None:
    """Make sure, within seconds, that ``model_ref`` (a hub id) can be had: it is in the local
    cache, or the hub answers for it with this token. Otherwise ModelLoadError says what to
    set (``setting``: the variable that chose the model), instead of from_pretrained retrying
    downloads for minutes while drafts wait."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    advice = how_to_get_a_model(setting)
    if isinstance(try_to_load_from_cache(model_ref, "config.json", revision=revision), str):
        return  # downloaded before: from_pretrained finds it in the cache
    if constants.HF_HUB_OFFLINE:
        raise ModelLoadError(
            f"model {model_ref!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: " + advice
        )
    try:
        get_hf_file_metadata(hf_hub_url(model_ref, "config.json", revision=revision), timeout=timeout_s)
    except GatedRepoError:
        raise ModelLoadError(
            f"model {model_ref!r} is gated and this token may not download it: " + advice
        ) from None
    except RepositoryNotFoundError:
        raise ModelLoadError(
            f"model {model_ref!r} is not on the Hugging Face hub, or not visible without a token: " + advice
        ) from None
    except HfHubHTTPError as exc:
        raise ModelLoadError(f"the Hugging Face hub refused model {model_ref!r} ({exc}): " + advice) from None
    except Exception as exc:  # the network: refused, unresolvable, timed out (httpx, OSError)
        raise ModelLoadError(
            f"cannot reach the Hugging Face hub at {constants.ENDPOINT} within {timeout_s:g} s for model "
            f"{model_ref!r} ({type(exc).__name__}: {exc}): " + advice
        ) from None


def _weights_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for weights in sorted(path.glob("*.safetensors")):
        digest.update(weights.read_bytes())
    return digest.hexdigest()[:16]


class TransformersEngine:
    """AutoProcessor + AutoModelForImageTextToText; bf16 on GPU, float32 on CPU."""

    def __init__(
        self,
        model_ref: str,
        *,
        revision: str | None = None,
        cache_dir: Path | None = None,
        hub_timeout_s: float = 5.0,
    ):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.model_id = model_ref
        self.is_test_model = model_ref == TINY_MODEL_ID
        source: str | Path = model_ref
        if self.is_test_model:
            source = build_tiny_model((cache_dir or Path(".")) / "tiny-gemma3")
        elif not Path(model_ref).exists():
            hub_check(model_ref, revision=revision, timeout_s=hub_timeout_s)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        # Gemma 3 overflows in float16: bf16 on GPU, float32 on CPU.
        self.dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        try:
            self.processor = AutoProcessor.from_pretrained(source, revision=revision)
            self.model = (
                AutoModelForImageTextToText.from_pretrained(source, revision=revision, dtype=self.dtype)
                .to(self.device)
                .eval()
            )
        except Exception as exc:
            hint = "" if Path(str(source)).exists() else f" ({how_to_get_a_model()})"
            raise ModelLoadError(f"could not load model {model_ref!r}: {exc}{hint}") from exc
        local = Path(str(source))
        self.revision = (
            revision
            or getattr(self.model.config, "_commit_hash", None)
            or (f"sha256:{_weights_digest(local)}" if local.is_dir() else "")
        )
        logger.info("model %s (%s) loaded on %s as %s", self.model_id, self.revision, self.device, self.dtype)

    @property
    def context(self) -> int:
        """The model's context in tokens (prompt and answer together)."""
        config = getattr(self.model.config, "text_config", self.model.config)
        return int(config.max_position_embeddings)

    def messages(self, *, system: str, parts: Parts) -> list[dict]:
        return [
            {"role": "system", "content": [{"type": "text", "text": system}]},
            {"role": "user", "content": user_content(parts)},
        ]

    def inputs(self, *, system: str, parts: Parts, max_new_tokens: int = 0):
        """The model's inputs for one request (a batch of one): token ids, masks, pixels;
        PromptTooLong before anything is generated when they and the answer do not fit."""
        inputs = self.processor.apply_chat_template(
            self.messages(system=system, parts=parts),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        )
        prompt_tokens = int(inputs["input_ids"].shape[-1])
        if prompt_tokens + max_new_tokens > self.context:
            raise PromptTooLong(
                f"the prompt is {prompt_tokens:,} tokens and the answer may take {max_new_tokens:,} "
                f"(MEDPORTAL_MAX_NEW_TOKENS): more than the model's context of {self.context:,}"
            )
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return inputs

    def stream(self, *, system: str, parts: Parts, max_new_tokens: int) -> Generation:
        """Start generating in a thread; the returned Generation yields text as it comes."""
        import torch
        from transformers import TextIteratorStreamer

        inputs = self.inputs(system=system, parts=parts, max_new_tokens=max_new_tokens)
        prompt_tokens = int(inputs["input_ids"].shape[-1])
        # Without a timeout the streamer waits for ever when generate() raises.
        streamer = TextIteratorStreamer(
            self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=TOKEN_TIMEOUT_S
        )
        params = {"max_new_tokens": max_new_tokens, "do_sample": False}
        outcome: dict = {}

        def run() -> None:
            try:
                with torch.inference_mode():
                    outcome["sequences"] = self.model.generate(**inputs, streamer=streamer, **params)
            except BaseException as exc:  # re-raised in the consuming thread
                outcome["error"] = exc
                streamer.end()

        generation = Generation(pieces=iter(()), prompt_tokens=prompt_tokens, params=params)

        def pieces() -> Iterator[str]:
            started = time.perf_counter()
            thread = threading.Thread(target=run, name="generate", daemon=True)
            thread.start()
            for piece in streamer:
                if generation.time_to_first_token_s is None and piece:
                    generation.time_to_first_token_s = time.perf_counter() - started
                yield piece
            thread.join()
            generation.duration_s = time.perf_counter() - started
            if "error" in outcome:
                raise RuntimeError(f"generation failed: {outcome['error']}") from outcome["error"]
            generation.generated_tokens = int(outcome["sequences"].shape[-1]) - prompt_tokens

        generation.pieces = pieces()
        return generation
