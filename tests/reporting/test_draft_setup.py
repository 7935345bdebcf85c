"""The study page's part in what the next AI draft reads: the body part (never guessed), the
prior exam it compares with, and what the last draft was given."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from medportal.audit.models import AuditEvent
from medportal.imaging.models import Instance, Study
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.services import drafts
from tests.reporting.test_priors import chest

pytestmark = [pytest.mark.usefixtures("image_store"), pytest.mark.django_db]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def study_page(client: Client, study: Study) -> str:
    response = client.get(reverse("study-detail", args=[study.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_radiograph_without_a_body_part_says_why_it_cannot_be_drafted_until_one_is_set(
    technologist, radiologist
):
    study = chest(technologist, date="20260401", body_part="")
    client = logged_in(radiologist)
    page = study_page(client, study)
    assert 'id="body-part-problem"' in page and "Set the body part on the study page, then draft." in page

    response = client.post(reverse("study-body-part", args=[study.pk]), {"body_part": " tibia "}, follow=True)
    page = response.content.decode()
    assert "Body part set to TIBIA" in page and 'id="body-part-problem"' not in page
    study.refresh_from_db()
    assert study.body_part == "TIBIA"
    event = AuditEvent.objects.filter(description="Body part set").last()
    assert (event.username, event.detail) == ("rita", {"from": "", "to": "TIBIA"})


def test_a_body_part_that_is_not_a_word_is_refused_and_nothing_changes(technologist, radiologist):
    study = chest(technologist, date="20260401", body_part="CHEST")
    response = logged_in(radiologist).post(
        reverse("study-body-part", args=[study.pk]), {"body_part": "<script>"}, follow=True
    )
    assert "A body part is letters and digits" in response.content.decode()
    study.refresh_from_db()
    assert study.body_part == "CHEST"


def test_a_signed_report_keeps_its_study_body_part(technologist, radiologist):
    study = chest(technologist, date="20260401", body_part="CHEST")
    Report.objects.filter(study=study).update(
        impression="Normal.", status=ReportStatus.SIGNED, signed_by=radiologist
    )
    response = logged_in(radiologist).post(
        reverse("study-body-part", args=[study.pk]), {"body_part": "KNEE"}, follow=True
    )
    assert "the body part of the study stays as it was" in response.content.decode()
    study.refresh_from_db()
    assert study.body_part == "CHEST"
    assert 'id="body-part-form"' not in study_page(logged_in(radiologist), study)


def test_the_radiologist_chooses_the_prior_of_the_next_draft_on_the_study_page(technologist, radiologist):
    older = chest(technologist, date="20260101", signed="Small left effusion.")
    prior = chest(technologist, date="20260301", signed="Left effusion, smaller.")
    current = chest(technologist, date="20260401")
    client = logged_in(radiologist)
    page = study_page(client, current)
    assert "Automatic (the latest: CR chest, 2026-03-01)" in page
    assert f'<option value="{older.pk}">CR chest, 2026-01-01</option>' in page
    assert '<option value="none">No prior</option>' in page

    url = reverse("report-prior", args=[drafts.report_for_study(study=current).pk])
    page = client.post(url, {"prior": str(older.pk)}, follow=True).content.decode()
    assert "Prior exam chosen" in page
    assert f'<option value="{older.pk}" selected>CR chest, 2026-01-01</option>' in page
    report = Report.objects.get(study=current)
    assert (report.prior_choice, report.prior_study_id) == ("chosen", older.pk)

    client.post(url, {"prior": "none"})
    assert Report.objects.get(study=current).prior_choice == "none"
    client.post(url, {"prior": "auto"})
    assert Report.objects.get(study=current).prior_choice == "auto"
    assert prior.pk != older.pk


def test_a_study_that_is_not_a_prior_is_refused_with_the_reason(technologist, radiologist):
    knee = chest(technologist, date="20260101", body_part="KNEE", signed="Normal knee.")
    current = chest(technologist, date="20260401")
    url = reverse("report-prior", args=[drafts.report_for_study(study=current).pk])
    page = logged_in(radiologist).post(url, {"prior": str(knee.pk)}, follow=True).content.decode()
    assert "That study cannot be the prior of this draft" in page
    assert Report.objects.get(study=current).prior_choice == "auto"


def test_a_technologist_may_not_choose_the_prior(technologist):
    current = chest(technologist, date="20260401")
    url = reverse("report-prior", args=[drafts.report_for_study(study=current).pk])
    assert logged_in(technologist).post(url, {"prior": "none"}).status_code == 403
    assert Report.objects.get(study=current).prior_choice == "auto"


def test_the_page_says_what_the_last_draft_read_and_shows_those_images(technologist, radiologist):
    study = chest(technologist, date="20260401")
    instance = Instance.objects.get(series__study=study)
    Report.objects.filter(study=study).update(
        status=ReportStatus.DRAFTED,
        model_id="tiny",
        preprocessing={
            "mode": "single",
            "prior": None,
            "images": [{"role": "current", "sop_instance_uid": instance.sop_instance_uid, "frame": 0}],
        },
    )
    page = study_page(logged_in(radiologist), study)
    assert "The AI draft read one image; no prior." in page
    assert "What the model saw (1 image)" in page
    assert f'src="{reverse("instance-image", args=[instance.pk])}?frame=0&amp;size=96"' in page
