"""The transformers engine on the tiny Gemma 3: processor, chat template, generate, streamer."""

from __future__ import annotations

import pytest
from PIL import Image

from inference_worker.engines.base import ModelLoadError
from inference_worker.engines.transformers_engine import TransformersEngine


def grey_image() -> Image.Image:
    return Image.new("RGB", (896, 896), (90, 90, 90))


def test_it_streams_text_in_pieces_and_measures_the_generation(tiny_engine):
    generation = tiny_engine.stream(
        system="You are an expert radiologist.",
        parts=["Describe this chest X-ray.", grey_image()],
        max_new_tokens=40,
    )
    pieces = list(generation)
    assert len(pieces) > 1
    assert "".join(pieces).strip()
    assert 0 < generation.generated_tokens <= 40
    assert generation.time_to_first_token_s > 0
    assert generation.tokens_per_second > 0
    assert generation.params == {"max_new_tokens": 40, "do_sample": False}


def test_greedy_decoding_is_repeatable(tiny_engine):
    def run() -> str:
        return "".join(tiny_engine.stream(system="s", parts=["Describe.", grey_image()], max_new_tokens=20))

    assert run() == run()


def test_the_prompt_has_the_system_turn_the_instruction_and_the_image(tiny_engine):
    messages = tiny_engine.messages(
        system="You are an expert radiologist.", parts=["Describe.", grey_image()]
    )
    prompt = tiny_engine.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert "You are an expert radiologist." in prompt
    assert "Describe." in prompt
    assert "<start_of_image>" in prompt
    assert prompt.rstrip().endswith("<start_of_turn>model")


def test_a_failing_generation_raises_instead_of_hanging(tiny_engine):
    generation = tiny_engine.stream(system="s", parts=["Describe.", grey_image()], max_new_tokens=-1)
    with pytest.raises(RuntimeError, match="generation failed"):
        list(generation)


def test_a_model_that_cannot_load_says_why_and_how_to_fix_it(tmp_path):
    with pytest.raises(ModelLoadError) as caught:
        TransformersEngine("no-such-org/no-such-model")
    message = str(caught.value)
    assert "no-such-org/no-such-model" in message
    assert "HF_TOKEN" in message and "tiny" in message


def test_the_tiny_model_records_a_weights_hash_as_its_revision(tiny_engine):
    assert tiny_engine.model_id == "tiny"
    assert tiny_engine.is_test_model
    assert tiny_engine.revision.startswith("sha256:")
    assert tiny_engine.device == "cpu"
    assert str(tiny_engine.dtype) == "torch.float32"
