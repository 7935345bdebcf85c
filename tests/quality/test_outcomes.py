"""A signed report is measured against its AI draft as its signature commits, and by the backfill."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from medportal.quality.models import DraftOutcome
from medportal.reporting.models import ReportVersion
from medportal.reporting.services import editing
from tests.conftest import PASSWORD
from tests.quality.conftest import DRAFT_MEASURED, drafted, edited, new_report

pytestmark = pytest.mark.django_db


def test_a_draft_signed_as_written_is_accepted_unchanged(radiologist, sign):
    report = sign(drafted(new_report("CT"), radiologist), radiologist)

    outcome = DraftOutcome.objects.get(report=report)
    assert outcome.edit_distance == 0
    assert outcome.similarity == 1.0
    assert outcome.accepted_unchanged
    assert (outcome.model_id, outcome.model_revision, outcome.modality) == ("tiny", "rev-1", "CT")
    assert outcome.radiologist == radiologist
    assert outcome.signed_at == report.signed_at
    ai_draft = report.versions.get(source=ReportVersion.AI)
    assert outcome.draft_finished_at == ai_draft.created_at
    assert outcome.seconds_to_sign == (report.signed_at - ai_draft.created_at).total_seconds()
    assert outcome.draft_chars == outcome.signed_chars == len(DRAFT_MEASURED)


def test_one_word_changed_counts_its_characters(radiologist, sign):
    report = drafted(new_report(), radiologist)
    report = edited(
        report, radiologist, "The lungs are clear.\nSmall pleural effusion.", "Normal chest radiograph."
    )
    sign(report, radiologist)

    outcome = DraftOutcome.objects.get(report=report)
    # "No" -> "Small": no letter in common, so 5 edits (2 substitutions, 3 insertions).
    assert outcome.edit_distance == 5
    longer = len(DRAFT_MEASURED) + 3
    assert outcome.signed_chars == longer
    assert outcome.similarity == pytest.approx(1 - 5 / longer)
    assert not outcome.accepted_unchanged
    assert outcome.signed_version == report.version == outcome.draft_version + 1


def test_whitespace_alone_is_not_an_edit(radiologist, sign):
    report = drafted(new_report(), radiologist)
    report = edited(
        report,
        radiologist,
        "  The lungs are   clear.\n\nNo pleural\teffusion. ",
        "Normal chest radiograph.\n",
    )
    sign(report, radiologist)

    outcome = DraftOutcome.objects.get(report=report)
    assert outcome.accepted_unchanged
    assert outcome.edit_distance == 0


def test_moving_a_sentence_between_sections_is_an_edit(radiologist, sign):
    report = drafted(new_report(), radiologist)
    report = edited(
        report, radiologist, "The lungs are clear.", "No pleural effusion.\nNormal chest radiograph."
    )
    sign(report, radiologist)

    outcome = DraftOutcome.objects.get(report=report)
    assert not outcome.accepted_unchanged
    assert outcome.edit_distance == 2  # the section break moved: " " <-> "\n" twice


def test_the_last_ai_draft_is_the_one_compared(radiologist, sign):
    report = drafted(new_report(), radiologist)
    report = drafted(
        report, radiologist, text="FINDINGS: Cardiomegaly.\nIMPRESSION: Enlarged heart.", revision="rev-2"
    )
    sign(report, radiologist)

    outcome = DraftOutcome.objects.get(report=report)
    assert outcome.accepted_unchanged
    assert outcome.model_revision == "rev-2"
    assert outcome.draft_version == report.versions.filter(source=ReportVersion.AI).last().number == 2


def test_a_report_written_without_an_ai_draft_is_not_measured(radiologist, sign):
    report = new_report()
    report = edited(report, radiologist, "Written by hand.", "Normal.")
    sign(report, radiologist)

    assert not DraftOutcome.objects.filter(report=report).exists()


def test_an_addendum_leaves_the_measure_as_it_was(radiologist, sign, django_capture_on_commit_callbacks):
    report = sign(drafted(new_report(), radiologist), radiologist)
    before = DraftOutcome.objects.get(report=report)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        editing.addendum_sign(report=report, user=radiologist, text="Also: no fracture.", password=PASSWORD)

    assert callbacks  # report_signed was sent, for the addendum
    after = DraftOutcome.objects.get(report=report)
    assert after.recorded_at == before.recorded_at
    assert DraftOutcome.objects.count() == 1


def test_the_backfill_measures_reports_signed_before_and_is_idempotent(radiologist, capsys):
    # Signed without running the commit callbacks: as if signed before this app existed.
    unchanged = editing.report_sign(
        report=drafted(new_report(), radiologist), user=radiologist, password=PASSWORD
    )
    changed = edited(drafted(new_report(), radiologist), radiologist, "Small pleural effusion.", "")
    editing.report_sign(report=changed, user=radiologist, password=PASSWORD)
    by_hand = edited(new_report(), radiologist, "Written by hand.", "")
    editing.report_sign(report=by_hand, user=radiologist, password=PASSWORD)
    assert not DraftOutcome.objects.exists()

    call_command("quality_backfill")
    assert "Measured 2 signed reports; 1 signed reports had no AI draft." in capsys.readouterr().out
    first = {o.report_id: o for o in DraftOutcome.objects.all()}
    assert set(first) == {unchanged.pk, changed.pk}
    assert first[unchanged.pk].accepted_unchanged and first[unchanged.pk].edit_distance == 0
    assert not first[changed.pk].accepted_unchanged

    call_command("quality_backfill")
    assert "Measured 0 signed reports" in capsys.readouterr().out
    call_command("quality_backfill", "--again")
    assert "Measured 2 signed reports" in capsys.readouterr().out
    again = {o.report_id: o for o in DraftOutcome.objects.all()}
    assert set(again) == set(first)
    for report_id, outcome in first.items():
        assert again[report_id].pk == outcome.pk
        assert again[report_id].edit_distance == outcome.edit_distance
        assert again[report_id].similarity == outcome.similarity
        assert again[report_id].seconds_to_sign == outcome.seconds_to_sign


def test_an_unsigned_report_is_not_backfilled(radiologist):
    drafted(new_report(), radiologist)
    call_command("quality_backfill")
    assert not DraftOutcome.objects.exists()
