"""Several drafts in one generation: a batching wrapper around the transformers engine.

One background thread owns the model. Callers (the Celery task threads of one worker
process) prepare their own inputs (chat template, image processor) and queue them; the
thread takes up to ``max_batch_size`` waiting requests, left-pads them into one batch and
runs one greedy ``model.generate`` over it. A streamer routes each step's new tokens to
the row's own ``TextIteratorStreamer``, so every caller iterates its own Generation with
exactly the pieces it would get alone, and publishes them under its own group and
sequence numbers.

A request that arrives while a batch runs waits for the next one: ``generate`` cannot take
rows mid-way, and transformers' continuous batching (``init_continuous_batching``) takes
token ids only, no pixels, so it cannot serve a vision-language model. To avoid starting a
batch of one a moment before its neighbours arrive, callers may announce a request they
are still preparing (``expecting()``); a starting batch waits for announced requests, at
most ``gather_s``. A lone request never waits.

Left padding leaves greedy text unchanged: ``generate`` derives each row's positions from
its attention mask (cumsum), and padded slots are masked out of attention; Gemma 3's
token_type_ids (image tokens) are padded with 0, "text". tests/inference_worker/
test_batching.py checks, row by row, the pieces against the unbatched engine's (float32
on CPU: identical). On a GPU in bf16, kernels chosen by batch shape can round differently
and flip a near-tie, so each draft records the batch size it ran in.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer
from transformers.generation.streamers import BaseStreamer

from inference_worker.engines.base import Generation, Parts
from inference_worker.engines.transformers_engine import TransformersEngine

logger = logging.getLogger(__name__)

# A row may wait behind a whole batch before its first token; its caller checks this
# often that the generation thread is still alive instead of giving up after a fixed time.
_POLL_S = 5.0


class _Request:
    """One caller's row: its inputs, its streamer and where it stands."""

    def __init__(self, inputs, max_new_tokens: int, streamer: TextIteratorStreamer):
        self.inputs = inputs
        self.prompt_tokens = int(inputs["input_ids"].shape[-1])
        self.max_new_tokens = max_new_tokens
        self.streamer = streamer
        self.generated = 0
        self.batch_size = 0
        # Written by the generation thread only, except `cancelled` (the caller gave up).
        self.done = False
        self.cancelled = False
        self.error: BaseException | None = None

    def finish(self, error: BaseException | None = None) -> None:
        if not self.done:
            self.done = True
            self.error = error
            self.streamer.end()


class _RowRouter(BaseStreamer):
    """Receives each step's tokens for the whole batch and hands each row its own."""

    def __init__(self, rows: list[_Request], eos_ids: set[int], on_step: Callable[[], None]):
        self.rows = rows
        self.eos_ids = eos_ids
        self.on_step = on_step
        self._prompt = True

    def put(self, value: torch.Tensor) -> None:
        if self._prompt:  # generate() first passes the (padded) prompts
            self._prompt = False
            return
        self.on_step()
        for row, token in zip(self.rows, value.view(-1).tolist(), strict=True):
            if row.done:
                continue
            row.generated += 1
            row.streamer.put(torch.tensor([token]))
            if token in self.eos_ids or row.generated >= row.max_new_tokens or row.cancelled:
                row.finish()

    def end(self) -> None:
        pass  # the batch loop finishes the rows, with the batch's error if there was one


class _RowsDone(StoppingCriteria):
    """Stops a row at its own max_new_tokens, or when its caller went away, so that the
    batch ends as soon as no row needs more tokens."""

    def __init__(self, rows: list[_Request], prompt_length: int):
        self.rows = rows
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        generated = input_ids.shape[-1] - self.prompt_length
        return torch.tensor(
            [row.done or row.cancelled or generated >= row.max_new_tokens for row in self.rows],
            dtype=torch.bool,
            device=input_ids.device,
        )


class BatchingEngine:
    """The transformers engine serving several concurrent callers with batched generation."""

    def __init__(self, engine: TransformersEngine, *, max_batch_size: int = 4, gather_s: float = 0.25):
        self.engine = engine
        self.model_id = engine.model_id
        self.revision = engine.revision
        self.device = engine.device
        self.is_test_model = engine.is_test_model
        self.max_batch_size = max(1, max_batch_size)
        self.gather_s = gather_s
        tokenizer = engine.processor.tokenizer
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        eos = engine.model.generation_config.eos_token_id
        self._eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        self._waiting: deque[_Request] = deque()
        self._announced = 0  # requests being prepared by callers inside expecting()
        self._local = threading.local()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        # For tests and benchmarks: generate() calls and decoding steps, all batches together.
        self.generate_calls = 0
        self.steps = 0

    # -- the callers' side ---------------------------------------------------------

    @contextmanager
    def expecting(self) -> Iterator[None]:
        """Announce that this thread will call ``stream`` soon (it is reading the study), so
        a batch about to start waits for it instead of leaving it for the next batch."""
        with self._cond:
            if not getattr(self._local, "announced", False):
                self._announced += 1
                self._local.announced = True
        try:
            yield
        finally:
            with self._cond:
                self._withdraw()
                self._cond.notify_all()

    def _withdraw(self) -> None:
        if getattr(self._local, "announced", False):
            self._local.announced = False
            self._announced -= 1

    def stream(self, *, system: str, parts: Parts, max_new_tokens: int) -> Generation:
        """Queue one request; the returned Generation yields its text as its row advances."""
        started = time.perf_counter()
        try:
            if max_new_tokens < 1:
                raise ValueError(f"max_new_tokens must be at least 1, not {max_new_tokens}")
            # Prepared here, in the caller's thread, so one bad request fails alone.
            inputs = self.engine.inputs(system=system, parts=parts, max_new_tokens=max_new_tokens)
        except Exception:
            with self._cond:
                self._withdraw()
                self._cond.notify_all()
            raise
        streamer = TextIteratorStreamer(
            self.engine.processor.tokenizer, skip_special_tokens=True, timeout=_POLL_S
        )
        request = _Request(inputs, max_new_tokens, streamer)
        params = {"max_new_tokens": max_new_tokens, "do_sample": False}
        generation = Generation(pieces=iter(()), prompt_tokens=request.prompt_tokens, params=params)
        with self._cond:
            self._withdraw()
            if self._closed:
                raise RuntimeError("generation failed: the engine is closed")
            self._waiting.append(request)
            self._ensure_thread()
            self._cond.notify_all()

        def pieces() -> Iterator[str]:
            try:
                for piece in self._follow(streamer):
                    if generation.time_to_first_token_s is None and piece:
                        generation.time_to_first_token_s = time.perf_counter() - started
                    yield piece
            finally:
                # A caller that stops early (superseded draft) frees its row at the next step.
                request.cancelled = True
            generation.duration_s = time.perf_counter() - started
            generation.generated_tokens = request.generated
            params["batch_size"] = request.batch_size
            if request.error is not None:
                raise RuntimeError(f"generation failed: {request.error}") from request.error

        generation.pieces = pieces()
        return generation

    def _follow(self, streamer: TextIteratorStreamer) -> Iterator[str]:
        while True:
            try:
                yield next(streamer)
            except StopIteration:
                return
            except queue.Empty:
                if self._thread is None or not self._thread.is_alive():
                    raise RuntimeError("generation failed: the generation thread stopped") from None

    # -- the generation thread -----------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            # Started lazily, in the process that serves drafts (never before a fork).
            self._thread = threading.Thread(target=self._loop, name="batched-generate", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the generation thread once the requests already queued are served."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _next_batch(self) -> list[_Request] | None:
        with self._cond:
            while not self._waiting:
                if self._closed:
                    return None
                self._cond.wait()
            deadline = time.monotonic() + self.gather_s
            while len(self._waiting) < self.max_batch_size and self._announced > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch = []
            while self._waiting and len(batch) < self.max_batch_size:
                request = self._waiting.popleft()
                if request.cancelled:
                    request.finish()
                else:
                    batch.append(request)
            return batch

    def _loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:  # every waiting request was abandoned
                continue
            try:
                self._run(batch)
            except BaseException as exc:  # never leave a caller waiting on a row
                for row in batch:
                    row.finish(exc)
                if not isinstance(exc, Exception):
                    raise

    def _collate(self, rows: list[_Request]) -> tuple[dict, int]:
        """Left-pad the rows' token-aligned tensors to one length; join the rest (pixels).

        Rows may carry different numbers of images (a chest X-ray's one, a CT's 85): their
        pixel_values are concatenated in row order, each row's images in its own order, and
        the model fills the image tokens of the padded batch in that same order (row by row,
        left to right), so every row meets its own images."""
        length = max(row.prompt_tokens for row in rows)
        batch = {}
        for key, first in rows[0].inputs.items():
            values = [row.inputs[key] for row in rows]
            if first.ndim == 2 and first.shape[-1] == rows[0].prompt_tokens:
                fill = self._pad_id if key == "input_ids" else 0  # masks: padding is not attended
                values = [torch.nn.functional.pad(v, (length - v.shape[-1], 0), value=fill) for v in values]
            batch[key] = torch.cat(values)
        return batch, length

    def _count_step(self) -> None:
        self.steps += 1

    def _run(self, rows: list[_Request]) -> None:
        for row in rows:
            row.batch_size = len(rows)
        try:
            inputs, length = self._collate(rows)
            self.generate_calls += 1
            with torch.inference_mode():
                self.engine.model.generate(
                    **inputs,
                    streamer=_RowRouter(rows, self._eos_ids, self._count_step),
                    stopping_criteria=StoppingCriteriaList([_RowsDone(rows, length)]),
                    max_new_tokens=max(row.max_new_tokens for row in rows),
                    do_sample=False,
                )
        except Exception as exc:
            error = exc
        else:
            error = None
        if error is not None and len(rows) > 1 and all(row.generated == 0 for row in rows):
            # Nothing streamed yet (it failed in the prefill): run each half on its own, so
            # that the request that broke the batch fails alone and the others still draft.
            logger.warning("a batch of %d failed (%s); splitting it", len(rows), error)
            middle = len(rows) // 2
            self._run(rows[:middle])
            self._run(rows[middle:])
            return
        if error is not None:
            logger.error("generation failed: %s", error, exc_info=error)
        for row in rows:
            row.finish(error)
