"""Drafts of whole studies on the tiny Gemma 3: a CT volume, many images in one batch, and a
study too large for the model refused before generation."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from inference_worker.drafting import draft_run
from inference_worker.engines.batching import BatchingEngine
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.services import drafts
from medportal.streaming.publish import ReportPublisher
from tests.inference_worker.synthetic import SAGITTAL, ct_series, new_study
from tests.inference_worker.test_volume import received, slice_of


@pytest.fixture
def publisher():
    publisher = ReportPublisher()
    yield publisher
    publisher.close()


def flat(images) -> list:
    if isinstance(images, Image.Image):
        return [images]
    return [image for item in images for image in flat(item)]


@pytest.fixture
def seen(tiny_engine, monkeypatch):
    """What the engine was given: each request's messages, and the images its processor took."""
    record = {"messages": [], "images": []}
    messages, preprocess = tiny_engine.messages, tiny_engine.processor.image_processor.preprocess

    def recorded_messages(**kwargs):
        built = messages(**kwargs)
        record["messages"].append(built)
        return built

    def recorded_preprocess(images, *args, **kwargs):
        record["images"].append(flat(images))
        return preprocess(images, *args, **kwargs)

    monkeypatch.setattr(tiny_engine, "messages", recorded_messages)
    monkeypatch.setattr(tiny_engine.processor.image_processor, "preprocess", recorded_preprocess)
    return record


@pytest.mark.django_db
def test_a_ct_is_drafted_from_its_axial_series_in_the_reference_order(
    technologist, radiologist, tiny_engine, publisher, seen, settings, django_capture_on_commit_callbacks
):
    settings.MEDPORTAL_MAX_NEW_TOKENS = 12
    study = new_study(body_part="CHEST")
    files = ct_series(study, slices=9, instance_numbers=[5, 3, 9, 1, 7, 2, 8, 4, 6])
    files += ct_series(study, slices=12, number=3, orientation=SAGITTAL)
    stored = received(technologist, files)
    report = drafts.draft_request(report=drafts.report_for_study(study=stored), user=radiologist)

    assert (
        draft_run(
            report_id=report.pk,
            attempt=report.attempt,
            engine_factory=lambda: tiny_engine,
            publisher=publisher,
        )
        == "drafted"
    )

    drafted = Report.objects.get(pk=report.pk)
    # The processor received the nine axial slices, feet to head, and nothing else.
    assert [[slice_of(image) for image in images] for images in seen["images"]] == [list(range(9))]
    # The user turn: the instruction, each slice followed by its number, the question last.
    (messages,) = seen["messages"]
    content = messages[1]["content"]
    assert [item["type"] for item in content] == ["text"] + ["image", "text"] * 9 + ["text"]
    assert content[0]["text"].startswith("You are an expert radiologist reading a CT study of the chest.")
    assert [content[i]["text"] for i in range(2, 19, 2)] == [f"SLICE {n}" for n in range(1, 10)]
    assert content[-1]["text"].startswith("Based on the visual evidence in the slices provided above")
    # What the model saw is in the draft's provenance.
    seen_by_model = drafted.preprocessing
    assert seen_by_model["mode"] == "volume" and seen_by_model["series_number"] == 2
    assert (seen_by_model["slices_given"], seen_by_model["slices_total"]) == (9, 9)
    assert len(seen_by_model["images"]) == 9 and seen_by_model["windows"][1] == [-135, 215]
    assert drafted.prompt.startswith("[ct-volume-v1]")


@pytest.mark.django_db
def test_a_volume_beyond_the_image_limit_is_refused_before_generation(
    technologist, radiologist, tiny_engine, publisher, seen, settings, django_capture_on_commit_callbacks
):
    settings.MEDPORTAL_MAX_DRAFT_IMAGES = 6
    stored = received(technologist, ct_series(new_study(body_part="CHEST"), slices=9))
    report = drafts.draft_request(report=drafts.report_for_study(study=stored), user=radiologist)

    assert (
        draft_run(
            report_id=report.pk,
            attempt=report.attempt,
            engine_factory=lambda: tiny_engine,
            publisher=publisher,
        )
        == "failed"
    )

    failed = Report.objects.get(pk=report.pk)
    assert failed.status == ReportStatus.FAILED
    assert "9 images" in failed.failure_reason and "MEDPORTAL_MAX_DRAFT_IMAGES is 6" in failed.failure_reason
    assert seen["images"] == []  # no image was even given to the processor


def test_a_prompt_beyond_the_models_context_is_refused_before_generation(tiny_engine):
    from inference_worker.engines.base import PromptTooLong

    with pytest.raises(PromptTooLong, match="context of 4,096"):
        tiny_engine.stream(system="s", parts=["Describe.", Image.new("RGB", (8, 8))], max_new_tokens=4090)


def grey(value: int) -> Image.Image:
    return Image.new("RGB", (64, 64), (value, value, value))


def test_two_drafts_with_different_image_counts_in_one_batch_each_get_their_own_images(
    tiny_engine, seen, monkeypatch
):
    requests = {
        "ct": ("Read these slices.", [grey(10), grey(60), grey(110)], "Report them."),
        "cxr": ("Describe this chest X-ray.", [grey(200)], ""),
    }
    alone = {
        name: "".join(tiny_engine.stream(system="s", parts=[first, *images, last], max_new_tokens=20))
        for name, (first, images, last) in requests.items()
    }
    seen["images"].clear()
    batched_pixels = []
    generate = tiny_engine.model.generate

    def recorded_generate(**kwargs):
        batched_pixels.append(kwargs["pixel_values"].clone())
        return generate(**kwargs)

    monkeypatch.setattr(tiny_engine.model, "generate", recorded_generate)
    engine = BatchingEngine(tiny_engine, max_batch_size=4, gather_s=60)
    results, barrier = {}, threading.Barrier(2)

    def call(name: str) -> None:
        first, images, last = requests[name]
        with engine.expecting():
            barrier.wait()
            generation = engine.stream(system="s", parts=[first, *images, last], max_new_tokens=20)
        results[name] = ("".join(generation), generation.params["batch_size"])

    threads = [threading.Thread(target=call, args=(name,)) for name in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    engine.close()

    # The processor received exactly each draft's images, in order, and nothing of the other's.
    shades = sorted([int(np.asarray(image)[0, 0, 0]) for image in images] for images in seen["images"])
    assert shades == [[10, 60, 110], [200]]
    # One generation for both: its pixels are the two drafts' own, four images in all...
    assert len(batched_pixels) == 1 and batched_pixels[0].shape[0] == 4
    # ...and each draft wrote what it writes alone (greedy, float32): its own images, its own text.
    assert {name: text for name, (text, _) in results.items()} == alone
    assert {size for _, size in results.values()} == {2}


def test_the_batch_joins_each_rows_pixels_in_row_order(tiny_engine):
    engine = BatchingEngine(tiny_engine, max_batch_size=4, gather_s=0)
    from inference_worker.engines.batching import _Request

    rows = [
        _Request(tiny_engine.inputs(system="s", parts=["a", grey(10), grey(60), grey(110), "b"]), 5, None),
        _Request(tiny_engine.inputs(system="s", parts=["c", grey(200)]), 5, None),
    ]
    batch, _ = engine._collate(rows)
    assert torch.equal(
        batch["pixel_values"], torch.cat([rows[0].inputs["pixel_values"], rows[1].inputs["pixel_values"]])
    )
    engine.close()
