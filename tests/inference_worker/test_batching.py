"""Several requests in one generation on the tiny Gemma 3: each gets the text it gets alone."""

from __future__ import annotations

import threading
import time

import pytest
from PIL import Image

from inference_worker.engines.base import Engine
from inference_worker.engines.batching import BatchingEngine
from inference_worker.engines.loading import ModelLoadError, load_engine

SYSTEM = "You are an expert radiologist."
# Different prompt lengths (so rows are left-padded), images and token limits. Prompt and
# text together pass the tiny model's 64-token sliding window, so both attention kinds
# see the padding.
REQUESTS = [
    (SYSTEM, "Describe this chest X-ray.", 90, 80),
    (
        SYSTEM,
        "This is one representative axial slice of a CT study of the head. Describe it.\n"
        "Clinical indication: headache for three weeks, worse in the morning, with nausea.",
        30,
        50,
    ),
    ("s", "Describe.", 200, 80),
    (SYSTEM, "This is one representative slice of an MR study. Describe it.", 140, 65),
]


def grey(value: int) -> Image.Image:
    return Image.new("RGB", (896, 896), (value, value, value))


@pytest.fixture
def batching(tiny_engine):
    engine = BatchingEngine(tiny_engine, max_batch_size=4, gather_s=60)
    yield engine
    engine.close()


def alone_pieces(tiny_engine, system: str, instruction: str, shade: int, max_new_tokens: int) -> list[str]:
    """The unbatched engine's pieces for one request (its own generate call, no padding)."""
    return list(
        tiny_engine.stream(system=system, parts=[instruction, grey(shade)], max_new_tokens=max_new_tokens)
    )


def alone(tiny_engine, system: str, instruction: str, shade: int, max_new_tokens: int) -> str:
    return "".join(alone_pieces(tiny_engine, system, instruction, shade, max_new_tokens))


def run_together(engine: BatchingEngine, requests: list[tuple]) -> list:
    """Each request from its own thread, as the worker's task threads do; all announced
    first, so they meet in one batch. Returns (pieces, generation) or the exception."""
    results: list = [None] * len(requests)
    announced = threading.Barrier(len(requests))

    def call(index: int) -> None:
        system, instruction, image, max_new_tokens = requests[index]
        try:
            with engine.expecting():
                announced.wait()
                generation = engine.stream(
                    system=system, parts=[instruction, image], max_new_tokens=max_new_tokens
                )
            results[index] = (list(generation), generation)
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


def test_it_is_an_engine(batching):
    assert isinstance(batching, Engine)
    assert (batching.model_id, batching.device) == ("tiny", "cpu")
    assert batching.revision.startswith("sha256:")


def test_concurrent_requests_share_one_generation_and_each_gets_its_own_text(tiny_engine, batching):
    expected = [alone_pieces(tiny_engine, *request) for request in REQUESTS]

    results = run_together(batching, [(s, i, grey(shade), n) for s, i, shade, n in REQUESTS])

    assert batching.generate_calls < len(REQUESTS)
    for (_, instruction, _, max_new_tokens), alone_run, (pieces, generation) in zip(
        REQUESTS, expected, results, strict=True
    ):
        # Greedy, float32: the same text, in the same pieces, as the request alone.
        assert pieces == alone_run, instruction
        assert len([p for p in pieces if p]) > 3, "each request streams in pieces"
        assert 0 < generation.generated_tokens <= max_new_tokens
        assert generation.params["max_new_tokens"] == max_new_tokens
        assert generation.params["do_sample"] is False
        assert generation.params["batch_size"] > 1
        assert generation.time_to_first_token_s > 0 and generation.tokens_per_second > 0


def test_a_request_that_breaks_the_batch_fails_alone(tiny_engine, batching):
    # A literal image placeholder in the text: the processor accepts it, the model does not
    # (one more image token than image features), so the whole batch's prefill raises.
    broken = (SYSTEM, "Describe <image_soft_token> this.", grey(60), 30)
    requests = [(s, i, grey(shade), n) for s, i, shade, n in REQUESTS[:3]] + [broken]
    expected = [alone(tiny_engine, *request) for request in REQUESTS[:3]]

    results = run_together(batching, requests)

    assert [("".join(r[0])) for r in results[:3]] == expected
    assert isinstance(results[3], RuntimeError)
    assert "generation failed" in str(results[3]) and "image tokens" in str(results[3])


def test_a_request_that_cannot_be_prepared_fails_alone_and_does_not_hold_up_the_others(tiny_engine, batching):
    requests = [(s, i, grey(shade), n) for s, i, shade, n in REQUESTS[:3]] + [
        (SYSTEM, "Describe.", 42, 30)  # not an image
    ]
    expected = [alone(tiny_engine, *request) for request in REQUESTS[:3]]

    started = time.monotonic()
    results = run_together(batching, requests)

    assert [("".join(r[0])) for r in results[:3]] == expected
    assert isinstance(results[3], TypeError) and "supported" in str(results[3])  # the processor's refusal
    # Its announcement was withdrawn: the batch did not wait out gather_s (60 s) for it.
    assert time.monotonic() - started < 60
    assert batching.generate_calls == 1


def test_a_lone_request_does_not_wait_for_company(tiny_engine, batching):
    started = time.monotonic()
    generation = batching.stream(system=SYSTEM, parts=["Describe.", grey(90)], max_new_tokens=5)
    assert "".join(generation) == alone(tiny_engine, SYSTEM, "Describe.", 90, 5)
    assert time.monotonic() - started < 60  # gather_s is 60: nothing was announced, nothing waited
    assert generation.params["batch_size"] == 1


def test_a_caller_that_stops_early_frees_its_row(tiny_engine, batching):
    long, short = (SYSTEM, "Describe.", grey(90), 400), (SYSTEM, "Describe this chest X-ray.", grey(30), 20)
    results: dict = {}

    def stop_after_three_pieces() -> None:
        with batching.expecting():
            barrier.wait()
            generation = batching.stream(system=long[0], parts=[long[1], long[2]], max_new_tokens=400)
        pieces = []
        for piece in generation:
            pieces.append(piece)
            if len(pieces) == 3:
                generation.close()
                break
        results["long"] = pieces

    barrier = threading.Barrier(2)
    thread = threading.Thread(target=stop_after_three_pieces)
    thread.start()
    with batching.expecting():
        barrier.wait()
        generation = batching.stream(system=short[0], parts=[short[1], short[2]], max_new_tokens=20)
    assert "".join(generation) == alone(tiny_engine, short[0], short[1], 30, 20)
    thread.join(timeout=60)
    assert len(results["long"]) == 3
    # The batch ended with the short row (20 steps), not after the abandoned row's 400.
    assert batching.generate_calls == 1
    assert batching.steps < 100


def test_an_invalid_token_limit_fails_the_request(batching):
    with pytest.raises(ValueError, match="max_new_tokens"):
        batching.stream(system=SYSTEM, parts=["Describe.", grey(90)], max_new_tokens=0)


def test_the_configured_engine_is_the_batching_transformers_engine(settings):
    settings.MEDPORTAL_ENGINE, settings.MEDPORTAL_BATCH_SIZE = "transformers", 3
    engine = load_engine()
    try:
        assert isinstance(engine, BatchingEngine) and engine.max_batch_size == 3
        assert engine.model_id == settings.MEDPORTAL_MODEL
    finally:
        engine.close()


def test_an_unknown_engine_is_a_clear_error(settings):
    settings.MEDPORTAL_ENGINE = "tensorrt"
    with pytest.raises(ModelLoadError, match="MEDPORTAL_ENGINE"):
        load_engine()
