"""The body part a study is drafted as: never guessed, read only from the header's own words."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from inference_worker.drafting import draft_run
from medportal.imaging.body_part import BodyPartUnknown, body_part_refusal, body_part_resolve
from medportal.imaging.ingest import IncomingFile
from medportal.intake.receive import studies_receive
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.services import drafts
from medportal.streaming.publish import ReportPublisher
from tests.inference_worker.synthetic import new_study, radiograph


@pytest.mark.parametrize(
    ("texts", "part"),
    [
        (["CHEST PA"], "CHEST"),
        (["XR THORAX 2 VIEWS"], "CHEST"),
        (["", "Lung window"], "CHEST"),
        (["CT ABDOMEN W CONTRAST"], "ABDOMEN"),
        (["MR BRAIN"], "HEAD"),
        (["XR TIBIA/FIBULA LEFT"], "LEG"),
        (["XR KNEE 3V", "KNEE LAT"], "KNEE"),
        (["", "", "Hand_PA"], "HAND"),
    ],
)
def test_the_words_of_the_table_name_a_body_part(texts, part):
    assert body_part_resolve(body_part="", texts=texts) == (part, "description")


@pytest.mark.parametrize(
    ("texts", "says"),
    [
        ([], "descriptions name none"),
        (["PA"], "descriptions name none"),  # a projection is no body part
        (["AP", "LAT"], "descriptions name none"),
        (["Routine", "SERIES 1"], "descriptions name none"),
        (["CHESTY"], "descriptions name none"),  # whole words only
        (["CHEST AND KNEE"], r"several \(chest, knee\)"),
    ],
)
def test_anything_else_is_refused_with_how_to_fix_it(texts, says):
    with pytest.raises(BodyPartUnknown, match=says) as refused:
        body_part_resolve(body_part="", texts=texts)
    assert "Set the body part on the study page, then draft." in str(refused.value)
    assert body_part_refusal(body_part="", texts=texts) == str(refused.value)


def test_the_headers_body_part_wins_over_the_words():
    assert body_part_resolve(body_part="knee", texts=["CHEST"]) == ("KNEE", "header")
    assert body_part_refusal(body_part="CHEST", texts=[]) is None


@pytest.fixture(scope="module")
def tiny():
    from django.conf import settings

    from inference_worker.engines.transformers_engine import TransformersEngine

    return TransformersEngine("tiny", cache_dir=settings.DATA_DIR / "models")


def run(report, engine) -> Report:
    publisher = ReportPublisher()
    try:
        draft_run(
            report_id=report.pk, attempt=report.attempt, engine_factory=lambda: engine, publisher=publisher
        )
    finally:
        publisher.close()
    return Report.objects.get(pk=report.pk)


@pytest.mark.django_db
def test_a_tibia_radiograph_never_gets_a_chest_prompt(
    technologist, radiologist, tiny, django_capture_on_commit_callbacks
):
    study = new_study(description="XR TIBIA FIBULA 2V")  # no Body Part Examined
    _, reports = studies_receive(
        files=[IncomingFile(*radiograph(study))], uploader=technologist, auto_draft=False
    )
    report = drafts.draft_request(report=reports[0], user=radiologist)

    failed = run(report, tiny)

    assert failed.status == ReportStatus.FAILED
    assert "of radiographs, MedGemma drafts only the chest; this one is of the leg" in failed.failure_reason
    assert failed.prompt == ""


@pytest.mark.django_db
@pytest.mark.parametrize("modality", ["CR", "DX"])
def test_a_png_radiograph_is_not_drafted_as_a_chest_x_ray(
    technologist, radiologist, tiny, modality, django_capture_on_commit_callbacks
):
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 128).save(buffer, format="PNG")
    _, reports = studies_receive(
        files=[IncomingFile("xray.png", buffer.getvalue())],
        uploader=technologist,
        image_modality=modality,
        auto_draft=False,
    )
    report = drafts.draft_request(report=reports[0], user=radiologist)

    failed = run(report, tiny)

    assert failed.status == ReportStatus.FAILED
    assert failed.failure_reason.endswith("Set the body part on the study page, then draft.")
    assert "chest" not in failed.prompt
