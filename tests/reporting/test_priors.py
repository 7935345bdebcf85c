"""The prior exam of a chest X-ray draft: found, chosen, refused, none; and the draft that
compares with it on the tiny Gemma 3."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from inference_worker.drafting import draft_run
from inference_worker.engines.transformers_engine import TransformersEngine
from medportal.audit.models import AuditEvent
from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Study
from medportal.intake.receive import studies_receive
from medportal.reporting.lifecycle import ReportError
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.prior_choice import report_choose_prior
from medportal.reporting.priors import prior_candidates, prior_for_draft
from medportal.reporting.provenance import images_summary, report_provenance
from medportal.reporting.services import drafts
from medportal.streaming.publish import ReportPublisher
from tests.inference_worker.synthetic import new_study, radiograph


def chest(
    user, *, date: str, patient: str = "P-1", columns: int = 32, body_part: str = "CHEST", signed: str = ""
) -> Study:
    study = new_study(patient_id=patient, date=date, body_part=body_part)
    _, reports = studies_receive(
        files=[IncomingFile(*radiograph(study, columns=columns))], uploader=user, auto_draft=False
    )
    stored = Study.objects.get(study_uid=study["study_uid"])
    if signed:
        Report.objects.filter(pk=reports[0].pk).update(impression=signed, status=ReportStatus.SIGNED)
    return stored


@pytest.fixture
def history(technologist):
    return {
        "older": chest(technologist, date="20260101", signed="Small left effusion."),
        "prior": chest(technologist, date="20260301", columns=16, signed="Left effusion, smaller."),
        "unsigned": chest(technologist, date="20260315"),
        "knee": chest(technologist, date="20260320", body_part="KNEE", signed="Normal knee."),
        "someone_else": chest(technologist, date="20260310", patient="P-2", signed="Normal."),
        "current": chest(technologist, date="20260401"),
    }


@pytest.mark.django_db
def test_the_candidates_are_earlier_signed_chest_radiographs_of_the_same_patient(history):
    assert prior_candidates(study=history["current"]) == [history["prior"], history["older"]]
    report = drafts.report_for_study(study=history["current"])
    assert prior_for_draft(report=report) == history["prior"]  # "auto": the latest


@pytest.mark.django_db
def test_the_radiologist_chooses_another_prior_or_none_and_it_is_audited(history, radiologist):
    report = drafts.report_for_study(study=history["current"])

    chosen = report_choose_prior(report=report, prior_study=history["older"], user=radiologist)
    assert (chosen.prior_choice, chosen.prior_study) == ("chosen", history["older"])
    assert prior_for_draft(report=chosen) == history["older"]

    none = report_choose_prior(report=chosen, prior_study=None, user=radiologist)
    assert (none.prior_choice, none.prior_study, prior_for_draft(report=none)) == ("none", None, None)

    back = report_choose_prior(report=none, prior_study=None, user=radiologist, automatic=True)
    assert prior_for_draft(report=back) == history["prior"]
    described = list(
        AuditEvent.objects.filter(object_id=str(report.pk)).values_list("description", flat=True)
    )
    assert "Prior exam of the AI draft chosen: CR chest, 2026-01-01" in described
    assert "Prior exam of the AI draft: none" in described


@pytest.mark.django_db
@pytest.mark.parametrize("which", ["unsigned", "knee", "someone_else", "current"])
def test_a_study_that_is_not_a_prior_is_refused(history, radiologist, which):
    report = drafts.report_for_study(study=history["current"])
    with pytest.raises(ReportError, match="cannot be the prior"):
        report_choose_prior(report=report, prior_study=history[which], user=radiologist)
    assert Report.objects.get(pk=report.pk).prior_choice == "auto"


@pytest.mark.django_db
def test_only_a_radiologist_chooses(history, technologist):
    report = drafts.report_for_study(study=history["current"])
    with pytest.raises(ReportError, match="Only a radiologist"):
        report_choose_prior(report=report, prior_study=None, user=technologist)


@pytest.fixture(scope="module")
def tiny():
    from django.conf import settings

    return TransformersEngine("tiny", cache_dir=settings.DATA_DIR / "models")


def draft(report: Report, engine) -> Report:
    publisher = ReportPublisher()
    try:
        assert (
            draft_run(
                report_id=report.pk,
                attempt=report.attempt,
                engine_factory=lambda: engine,
                publisher=publisher,
            )
            == "drafted"
        )
    finally:
        publisher.close()
    return Report.objects.get(pk=report.pk)


@pytest.mark.django_db
def test_a_follow_up_chest_x_ray_is_drafted_with_its_prior(
    history, radiologist, tiny, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.MEDPORTAL_MAX_NEW_TOKENS = 10
    given = []
    messages = tiny.messages
    monkeypatch.setattr(tiny, "messages", lambda **kw: given.append(messages(**kw)) or given[-1])
    report = drafts.draft_request(report=drafts.report_for_study(study=history["current"]), user=radiologist)

    drafted = draft(report, tiny)

    content = given[0][1]["content"]
    assert [item["type"] for item in content] == ["text", "text", "image", "text", "image", "text"]
    assert content[1]["text"] == "PRIOR (CR chest, 2026-03-01):"
    assert content[3]["text"] == "CURRENT (CR chest, 2026-04-01):"
    # The prior's image first (the narrow radiograph, padded black at its sides), then the current one.
    prior_image, current_image = np.asarray(content[2]["image"]), np.asarray(content[4]["image"])
    assert prior_image[:, :100].max() == 0 and current_image[:, :100].max() > 0
    assert "The prior report's impression: Left effusion, smaller." in content[5]["text"]
    assert drafted.comparison == "CR chest, 2026-03-01"
    assert drafted.draft_text.startswith("COMPARISON: CR chest, 2026-03-01")
    assert drafted.preprocessing["prior"]["study_uid"] == history["prior"].study_uid
    assert images_summary(drafted.preprocessing) == "read the current image; prior 2026-03-01"
    assert report_provenance(drafted)["preprocessing"]["mode"] == "longitudinal"


@pytest.mark.django_db
def test_without_a_prior_the_comparison_says_there_is_none(
    technologist, radiologist, tiny, settings, django_capture_on_commit_callbacks
):
    settings.MEDPORTAL_MAX_NEW_TOKENS = 6
    first = chest(technologist, date="20260401")
    report = drafts.draft_request(report=drafts.report_for_study(study=first), user=radiologist)

    drafted = draft(report, tiny)

    assert drafted.comparison == "None."
    assert drafted.preprocessing["mode"] == "single" and drafted.preprocessing["prior"] is None
    assert images_summary(drafted.preprocessing) == "read one image; no prior"
    assert datetime.date(2026, 4, 1) == first.study_date
