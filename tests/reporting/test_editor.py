"""The report editor on the study page, through the Django test client: the AI draft beside
the text with the changes marked, quiet saves (autosave, Ctrl+S) and their conflicts,
regenerating with an instruction, and the keyboard help."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from medportal.audit.models import AuditEvent, Outcome
from medportal.reporting.models import Report, ReportStatus, ReportVersion
from medportal.reporting.selectors import report_ai_draft
from medportal.reporting.services import drafts, editing
from tests.conftest import PASSWORD
from tests.reporting.test_services import DRAFT, PROVENANCE, drafted, new_report, reload

HTMX = {"HTTP_HX_REQUEST": "true"}
AUTOSAVE = {**HTMX, "HTTP_X_MEDPORTAL_SAVE": "auto"}


@pytest.fixture
def rita(client, radiologist):
    client.force_login(radiologist)
    return client


@pytest.fixture
def report(radiologist) -> Report:
    return drafted(new_report(), radiologist)


def study_page(client, report: Report) -> str:
    response = client.get(reverse("study-detail", args=[report.study_id]))
    assert response.status_code == 200
    return response.content.decode()


def save(client, report: Report, *, findings: str, impression: str, version: int, headers=AUTOSAVE):
    return client.post(
        reverse("report-save", args=[report.pk]),
        {"findings": findings, "impression": impression, "version": version},
        **headers,
    )


def between(html: str, start: str, end: str) -> str:
    """The part of ``html`` from ``start`` to the first ``end`` after it."""
    assert start in html, f"{start!r} is not in the page"
    begin = html.index(start)
    return html[begin : html.index(end, begin)]


def events(report: Report):
    return AuditEvent.objects.filter(object_type="report", object_id=str(report.pk))


# -- the AI draft beside the text ------------------------------------------------------------


def test_the_study_page_shows_the_ai_draft_beside_the_editor_with_no_changes_yet(rita, report):
    page = study_page(rita, report)

    assert 'id="report-edit-form"' in page
    assert "The lungs are clear.\nNo pleural effusion." in between(page, 'id="ai-draft-text"', "</details>")
    diff = between(page, 'id="ai-diff"', "</details>")
    assert "<ins>" not in diff and "<del>" not in diff
    assert "Normal chest radiograph." in diff


def test_after_a_save_the_diff_marks_the_inserted_and_removed_words(rita, report):
    response = save(
        rita,
        report,
        findings="The lungs are clear.\nNo pleural effusion or pneumothorax.",
        impression="Normal chest radiograph.",
        version=report.version,
        headers=HTMX,
    )

    assert response.status_code == 200
    panel = response.content.decode()
    assert "No pleural effusion<ins> or pneumothorax</ins>." in between(panel, 'id="ai-diff"', "</details>")
    # The draft as the AI wrote it is still shown unchanged beside it.
    assert "No pleural effusion.</div>" in panel


def test_the_diff_escapes_the_text(rita, report):
    response = save(rita, report, findings="<script>x</script>", impression="", version=report.version)

    assert "<ins>&lt;script&gt;x&lt;/script&gt;</ins>" in response.content.decode()


def test_no_ai_draft_is_compared_while_a_new_one_is_being_written(radiologist, report):
    editing.report_save(
        report=report, user=radiologist, findings="Mine.", impression="", expected_version=report.version
    )
    assert report_ai_draft(reload(report))["findings"] == "The lungs are clear.\nNo pleural effusion."

    drafts.draft_request(report=reload(report), user=radiologist)

    assert report_ai_draft(reload(report)) is None


def test_the_ai_draft_is_the_current_attempts_not_an_earlier_one(radiologist, report):
    again = drafted(report, radiologist, text="FINDINGS: Second draft.\nIMPRESSION: Second impression.")

    assert report_ai_draft(again) == {
        "technique": "",
        "comparison": "",
        "findings": "Second draft.",
        "impression": "Second impression.",
    }


# -- quiet saves: autosave and Ctrl+S -------------------------------------------------------------


def test_an_autosave_stores_a_version_and_answers_with_the_version_and_the_changes_only(rita, report):
    before = report.version

    response = save(rita, report, findings="Clear lungs.", impression="Normal.", version=before)

    assert response.status_code == 200
    assert response["HX-Reswap"] == "none"  # the text being typed is not replaced
    body = response.content.decode()
    assert 'id="report-edit-form"' not in body
    assert re.search(r"Saved at <time datetime=\"[^\"]+\">\d\d:\d\d:\d\d</time> \(version 2\)", body)
    assert f'value="{before + 1}" id="edit-version" hx-swap-oob="true"' in body
    assert f'value="{before + 1}" id="sign-version" hx-swap-oob="true"' in body
    assert 'id="report-status" hx-swap-oob="true">In review<' in body
    assert '<div id="ai-diff" hx-swap-oob="innerHTML">' in body and "<ins>" in body
    stored = reload(report)
    assert (stored.version, stored.findings, stored.status) == (
        before + 1,
        "Clear lungs.",
        ReportStatus.IN_REVIEW,
    )
    version = ReportVersion.objects.get(report=report, number=before + 1)
    assert (version.source, version.findings) == (ReportVersion.EDIT, "Clear lungs.")
    assert events(report).last().description == "Report edited"


def test_saves_in_a_row_each_send_the_version_the_last_one_made_and_never_conflict(rita, report):
    version = report.version
    for n, text in enumerate(["Clear", "Clear lungs", "Clear lungs."], start=1):
        response = save(rita, report, findings=text, impression="", version=version)
        assert response.status_code == 200, response.content.decode()
        version = int(re.search(r'value="(\d+)" id="edit-version"', response.content.decode()).group(1))
        assert version == report.version + n

    assert list(ReportVersion.objects.filter(report=report).values_list("findings", flat=True)) == [
        "The lungs are clear.\nNo pleural effusion.",
        "Clear",
        "Clear lungs",
        "Clear lungs.",
    ]


def test_a_keyboard_save_is_quiet_too(rita, report):
    response = save(
        rita,
        report,
        findings="Saved with Ctrl+S.",
        impression="",
        version=report.version,
        headers={**HTMX, "HTTP_X_MEDPORTAL_SAVE": "keyboard"},
    )

    assert response["HX-Reswap"] == "none"
    assert "(version 2)" in response.content.decode()
    assert reload(report).findings == "Saved with Ctrl+S."


def test_an_autosave_after_someone_else_saved_shows_their_text_and_keeps_mine_on_the_page(
    rita, report, second_radiologist
):
    theirs = editing.report_save(
        report=report,
        user=second_radiologist,
        findings="Their newer findings.",
        impression="Their impression.",
        expected_version=report.version,
    )

    response = save(rita, report, findings="My findings.", impression="Mine.", version=report.version)

    assert response.status_code == 409
    assert response["HX-Reswap"] == "innerHTML"  # the whole panel, with the message
    panel = response.content.decode()
    assert "Someone else saved this report first; their text is shown." in panel
    assert re.search(r'<textarea name="findings"[^>]*>\s*Their newer findings.</textarea>', panel)
    assert f'value="{theirs.version}" id="edit-version"' in panel
    unsaved = between(panel, 'id="unsaved-text"', "</details>")
    assert "My findings." in unsaved and "Mine." in unsaved
    stored = reload(report)
    assert (stored.findings, stored.version) == ("Their newer findings.", theirs.version)
    refusal = events(report).last()
    assert (refusal.description, refusal.outcome) == (
        "Report action refused: report-save",
        Outcome.MINOR_FAILURE,
    )


def test_an_autosave_of_a_signed_report_is_refused_with_the_reason(rita, report, radiologist):
    editing.report_sign(report=report, user=radiologist, password=PASSWORD)

    response = save(rita, report, findings="Too late.", impression="", version=report.version)

    assert response.status_code == 409
    assert response["HX-Reswap"] == "innerHTML"
    assert "This report is signed; it cannot be edited. Corrections are addenda." in response.content.decode()
    assert reload(report).findings == "The lungs are clear.\nNo pleural effusion."


def test_the_first_autosave_of_a_report_without_a_sign_form_brings_the_sign_form(rita, db):
    report = new_report()  # no draft: nothing to sign yet
    assert 'id="report-sign-form"' not in study_page(rita, report)

    response = save(rita, report, findings="Written by hand.", impression="", version=report.version)

    body = response.content.decode()
    assert '<div id="sign-area" hx-swap-oob="innerHTML">' in body
    assert 'id="report-sign-form"' in body and 'value="1" id="sign-version"' in body
    assert "No finished AI draft" not in body  # the panel itself is not sent


def test_a_plain_save_still_replaces_the_panel_and_says_saved(rita, report):
    response = save(
        rita, report, findings="Clicked Save.", impression="", version=report.version, headers=HTMX
    )

    assert response.status_code == 200
    assert "HX-Reswap" not in response
    assert "Saved (version 2)." in response.content.decode()


def test_a_quiet_save_header_without_htmx_is_an_ordinary_save(rita, report):
    response = save(
        rita, report, findings="From a beacon.", impression="", version=report.version,
        headers={"HTTP_X_MEDPORTAL_SAVE": "auto"},
    )  # fmt: skip

    assert response.status_code == 302
    assert reload(report).findings == "From a beacon."


# -- regenerate with an instruction ----------------------------------------------------------------


def test_the_editor_offers_regenerate_with_an_instruction(rita, report):
    page = study_page(rita, report)

    form = between(page, 'id="report-draft-form"', "</form>")
    assert 'name="instruction"' in form and 'maxlength="2000"' in form
    assert ">Regenerate</button>" in form


def test_regenerating_with_an_instruction_stores_and_audits_it_and_the_page_shows_it(rita, report):
    response = rita.post(
        reverse("report-draft", args=[report.pk]),
        {"instruction": "  Compare with the prior study; be brief.  "},
        **HTMX,
    )

    assert response.status_code == 200
    stored = reload(report)
    assert (stored.status, stored.attempt) == (ReportStatus.QUEUED, report.attempt + 1)
    assert stored.draft_instruction == "Compare with the prior study; be brief."
    event = events(report).filter(description="AI draft requested").last()
    assert event.detail == {"instruction": "Compare with the prior study; be brief."}
    assert event.username == "rita"
    assert (
        "Your instruction for this draft: Compare with the prior study; be brief."
        in response.content.decode()
    )


def test_the_instruction_is_in_the_provenance_once_the_draft_is_written(rita, report, radiologist):
    rita.post(reverse("report-draft", args=[report.pk]), {"instruction": "Describe the lung bases."}, **HTMX)
    claim = drafts.draft_start(report_id=report.pk, attempt=reload(report).attempt)
    assert drafts.draft_finish(claim=claim, text=DRAFT, provenance=PROVENANCE)

    page = study_page(rita, report)
    assert "Describe the lung bases." in between(page, 'id="provenance-instruction"', "</dd>")


def test_regenerating_without_an_instruction_clears_the_last_one(rita, report):
    rita.post(reverse("report-draft", args=[report.pk]), {"instruction": "Be brief."}, **HTMX)
    drafts.draft_fail(report_id=report.pk, attempt=reload(report).attempt, reason="test")

    rita.post(reverse("report-draft", args=[report.pk]), {"instruction": ""}, **HTMX)

    assert reload(report).draft_instruction == ""
    assert events(report).filter(description="AI draft requested").last().detail == {}


def test_regenerating_a_signed_report_is_refused_clearly_and_stores_nothing(rita, report, radiologist):
    editing.report_sign(report=report, user=radiologist, password=PASSWORD)

    response = rita.post(
        reverse("report-draft", args=[report.pk]), {"instruction": "Try again, shorter."}, **HTMX
    )

    assert response.status_code == 409
    assert (
        "This report is signed; it cannot be sent for an AI draft. Corrections are addenda."
        in response.content.decode()
    )
    stored = reload(report)
    assert (stored.status, stored.draft_instruction, stored.attempt) == (
        ReportStatus.SIGNED,
        "",
        report.attempt,
    )
    refusal = events(report).last()
    assert (refusal.description, refusal.outcome) == (
        "Report action refused: report-draft",
        Outcome.MINOR_FAILURE,
    )


def test_an_instruction_over_2000_characters_is_refused_with_the_limit(rita, report):
    response = rita.post(reverse("report-draft", args=[report.pk]), {"instruction": "x" * 2001}, **HTMX)

    assert response.status_code == 400
    assert "The instruction is too long: at most 2000 characters." in response.content.decode()
    assert reload(report).status == ReportStatus.DRAFTED


# -- keys and the next study --------------------------------------------------------------------


def test_the_keyboard_help_and_the_next_study_button_are_on_a_radiologists_page(rita, report):
    page = study_page(rita, report)

    help_line = between(page, 'id="shortcut-help"', "</p>")
    assert "<kbd>Ctrl</kbd>+<kbd>S</kbd> save" in help_line
    assert f'action="{reverse("worklist-next")}"' in page and 'id="next-study"' in page
    assert 'src="/static/medportal/editor.js"' in page


def test_a_technologist_sees_neither_the_editor_nor_the_next_study_button(client, technologist, report):
    client.force_login(technologist)

    page = study_page(client, report)

    assert 'id="report-edit-form"' not in page and 'id="next-study"' not in page
    assert 'id="shortcut-help"' not in page
