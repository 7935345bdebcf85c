"""The vLLM engine (optional: ``pip install medportal[vllm]``, MEDPORTAL_ENGINE=vllm).

Exercised only where a GPU is present: vLLM needs CUDA, it is not installed in CI, and
no test imports this module (``load_engine`` imports it only when MEDPORTAL_ENGINE=vllm).
It was written against vLLM's V1 ``AsyncLLMEngine`` (``vllm.v1.engine.async_llm.AsyncLLM``):
``from_engine_args``, and ``generate(prompt, sampling_params, request_id)``, an async
generator of ``RequestOutput``s that aborts the request when it is closed.

vLLM batches continuously by itself: a request joins the running batch at the next step
(up to ``max_num_seqs``, the worker's MEDPORTAL_BATCH_SIZE; Google serves MedGemma with 4).
The Celery task threads call ``stream`` at the same time; one event loop, in a thread of
its own, drives the engine and hands each request's text deltas to its caller's queue.
Prompt and image are those of the transformers engine: the same chat template (from the
model's processor), greedy decoding, stop on the model's end-of-turn ids.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from inference_worker.engines.base import Generation, ModelLoadError, Parts, PromptTooLong, user_content
from inference_worker.engines.transformers_engine import _weights_digest, hub_check
from inference_worker.tiny_model import TINY_MODEL_ID, build_tiny_model

_DONE = object()
# How long a caller waits for its next delta before concluding the engine died.
TOKEN_TIMEOUT_S = 120.0


class VLLMEngine:
    """vLLM's AsyncLLMEngine, bf16 on one GPU, streaming to synchronous callers."""

    def __init__(
        self,
        model_ref: str,
        *,
        revision: str | None = None,
        max_num_seqs: int = 4,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int = 8192,
        max_images: int = 1,
        cache_dir: Path | None = None,
    ):
        try:
            from transformers import AutoConfig, AutoProcessor, GenerationConfig
            from vllm import AsyncEngineArgs, AsyncLLMEngine
        except ImportError as exc:
            raise ModelLoadError(
                f"MEDPORTAL_ENGINE=vllm needs the vllm extra: pip install 'medportal[vllm]' ({exc})"
            ) from exc

        self.model_id = model_ref
        self.is_test_model = model_ref == TINY_MODEL_ID
        source = (
            str(build_tiny_model((cache_dir or Path(".")) / "tiny-gemma3"))
            if self.is_test_model
            else model_ref
        )
        if not self.is_test_model and not Path(model_ref).exists():
            hub_check(model_ref, revision=revision)
        self.device = "cuda"
        self.context = max_model_len
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="vllm-loop", daemon=True).start()
        try:
            # The chat template and stop ids come from the model's own files, as for transformers.
            self.processor = AutoProcessor.from_pretrained(source, revision=revision)
            eos = GenerationConfig.from_pretrained(source, revision=revision).eos_token_id
            self._stop_ids = list(eos) if isinstance(eos, list) else [eos] if eos is not None else []
            args = AsyncEngineArgs(
                model=source,
                revision=revision,
                dtype="bfloat16",  # Gemma 3 overflows in float16
                max_num_seqs=max_num_seqs,
                max_model_len=max_model_len,
                gpu_memory_utilization=gpu_memory_utilization,
                # A CT's 85 slices (and a prior) in one prompt, for a model that reads volumes.
                limit_mm_per_prompt={"image": max_images},
            )

            async def build():
                # Created inside the loop that will drive it (its output handler is a task there).
                return AsyncLLMEngine.from_engine_args(args)

            self._engine = asyncio.run_coroutine_threadsafe(build(), self._loop).result()
            # As the transformers engine records it: the hub commit, or a local copy's weights hash.
            self.revision = (
                revision
                or getattr(AutoConfig.from_pretrained(source, revision=revision), "_commit_hash", None)
                or (f"sha256:{_weights_digest(Path(source))}" if Path(source).is_dir() else "")
            )
        except Exception as exc:
            raise ModelLoadError(f"could not load model {model_ref!r} with vLLM: {exc}") from exc

    def _prompt(self, *, system: str, parts: Parts) -> str:
        # The images' places only: vLLM takes the pictures themselves as multi_modal_data.
        content = [item if item["type"] == "text" else {"type": "image"} for item in user_content(parts)]
        messages = [
            {"role": "system", "content": [{"type": "text", "text": system}]},
            {"role": "user", "content": content},
        ]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # vLLM's tokenizer adds <bos> itself; the template's own would make two.
        bos = self.processor.tokenizer.bos_token or ""
        return text.removeprefix(bos)

    def stream(self, *, system: str, parts: Parts, max_new_tokens: int) -> Generation:
        """Submit one request to the running engine; the Generation yields its text as it comes."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        params = {"max_new_tokens": max_new_tokens, "do_sample": False}
        sampling = SamplingParams(
            temperature=0.0,  # greedy, as the model card
            max_tokens=max_new_tokens,
            stop_token_ids=self._stop_ids,
            skip_special_tokens=True,
            output_kind=RequestOutputKind.DELTA,  # each output holds only the new text
        )
        images = [part for part in parts if isinstance(part, Image.Image)]
        text = self._prompt(system=system, parts=parts)
        prompt_tokens = len(self.processor.tokenizer(text)["input_ids"])
        if prompt_tokens > self.context:  # images not yet counted: vLLM refuses the rest itself
            raise PromptTooLong(
                f"the prompt is {prompt_tokens:,} tokens, more than the engine's "
                f"{self.context:,} (max_model_len)"
            )
        prompt = {"prompt": text, "multi_modal_data": {"image": images if len(images) != 1 else images[0]}}
        deltas: queue.Queue = queue.Queue()
        counts = {"prompt": 0, "generated": 0}
        started = time.perf_counter()

        async def run() -> None:
            try:
                async for output in self._engine.generate(prompt, sampling, uuid.uuid4().hex):
                    counts["prompt"] = len(output.prompt_token_ids or ()) or counts["prompt"]
                    counts["generated"] += len(output.outputs[0].token_ids)
                    deltas.put(output.outputs[0].text)
                deltas.put(_DONE)
            except BaseException as exc:  # re-raised in the caller's thread
                deltas.put(exc)
                raise

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        generation = Generation(pieces=iter(()), prompt_tokens=0, params=params)

        def pieces() -> Iterator[str]:
            try:
                while (item := deltas.get(timeout=TOKEN_TIMEOUT_S)) is not _DONE:
                    if isinstance(item, BaseException):
                        raise RuntimeError(f"generation failed: {item}") from item
                    if item and generation.time_to_first_token_s is None:
                        generation.time_to_first_token_s = time.perf_counter() - started
                    yield item
            except queue.Empty:
                raise RuntimeError("generation failed: no output from vLLM") from None
            finally:
                # Closing early (a superseded draft) cancels the task; vLLM aborts the request.
                future.cancel()
            generation.duration_s = time.perf_counter() - started
            generation.prompt_tokens = counts["prompt"]
            generation.generated_tokens = counts["generated"]

        generation.pieces = pieces()
        return generation
