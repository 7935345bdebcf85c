"""The report editor in a real browser (chromium via Playwright) against daphne, a Celery
worker and the tiny model: regenerate with an instruction, the AI draft and the changes marked
one click away, autosave without a click, Ctrl+S, a conflict met by an autosave, Ctrl+Enter to
sign (saving the last words first), Alt+N to the next study from inside the viewer, and the
reading room (the OHIF Viewer beside the report, Sign always in view) in the dark and light
themes at 1920×1080 and 1366×768, and narrow (viewer above report). Screenshots go to
test-artifacts/ (reading-room-<size>-<theme>.png)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from medportal.reporting.models import Report, ReportStatus, ReportVersion
from medportal.reporting.services import editing
from tests.conftest import PASSWORD, dicom_bytes, token_header
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_browser import browser_page  # noqa: F401  (the fixture)
from tests.e2e.test_ohif_browser import viewer_frame, wait_for_image

pytestmark = [pytest.mark.e2e]

DARK_BACKGROUND = "rgb(15, 17, 21)"
LIGHT_BACKGROUND = "rgb(245, 246, 248)"


def upload_by_api(stack, technologist, name: str) -> dict:
    key = token_header(technologist)["HTTP_AUTHORIZATION"].removeprefix("Token ")
    with stack.http(key) as api:
        response = api.post("/api/studies/", files={"files": (name, dicom_bytes(name), "application/dicom")})
    assert response.status_code == 201, response.text
    return response.json()["studies"][0]


def in_another_thread(function, **kwargs):
    """Playwright's event loop runs in this thread; the channel layer's sync calls must not."""
    outcome = {}

    def run():
        try:
            outcome["result"] = function(**kwargs)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return outcome["result"]


def background(page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def check_layout(page, size: tuple[int, int], theme: str) -> None:
    """The reading room fills the window without scrolling it: the viewer on the left (about
    two thirds), the report on the right, the study in one line, Sign in view."""
    width, height = size
    page.set_viewport_size({"width": width, "height": height})
    page.locator("#report-scroll").evaluate("element => { element.scrollTop = 0; }")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.evaluate("document.documentElement.scrollHeight") <= height
    viewer = page.locator("#viewer-frame").bounding_box()
    report = page.locator("#report").bounding_box()
    assert 0.55 <= viewer["width"] / width <= 0.72, viewer
    assert report["x"] >= viewer["x"] + viewer["width"] - 1 and abs(report["y"] - viewer["y"]) < 2
    assert viewer["y"] + viewer["height"] > height * 0.8  # the viewer takes the window's height
    assert page.locator("#study-header").bounding_box()["height"] < 44  # one line
    sign = page.locator("#sign-button").bounding_box()
    assert sign["y"] + sign["height"] <= height, "Sign is not in view"
    # Each line of the editor is wide enough to read.
    assert page.locator("#id_findings").bounding_box()["width"] >= 320
    wait_for_image(viewer_frame(page))
    page.screenshot(path=ARTIFACTS / f"reading-room-{width}x{height}-{theme}.png", caret="initial")
    # Scrolled down the report, Sign is still there; the viewer did not move.
    page.locator("#report-scroll").evaluate("element => { element.scrollTop = element.scrollHeight; }")
    assert abs(page.locator("#sign-button").bounding_box()["y"] - sign["y"]) < 1
    assert abs(page.locator("#viewer-frame").bounding_box()["y"] - viewer["y"]) < 1
    page.locator("#report-scroll").evaluate("element => { element.scrollTop = 0; }")


def check_narrow_layout(page) -> None:
    """Below 1100 px the viewer is above the report, and nothing is wider than the window."""
    page.set_viewport_size({"width": 1000, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 1000
    viewer = page.locator("#viewer-frame").bounding_box()
    assert page.locator("#report").bounding_box()["y"] >= viewer["y"] + viewer["height"] - 1
    page.screenshot(path=ARTIFACTS / "reading-room-1000x800-dark.png", caret="initial")


# A short draft: the editor is under test here, not the model's speed.
@pytest.mark.stack_env(MEDPORTAL_MAX_NEW_TOKENS=64)
def test_a_radiologist_edits_beside_the_ai_draft_with_autosave_and_keys(
    stack,
    radiologist,
    second_radiologist,
    technologist,
    browser_page,  # noqa: F811
):
    page = browser_page
    page.emulate_media(color_scheme="dark")
    # (Screenshots keep the caret: hiding it, Playwright leaves style attributes behind.)
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    first = upload_by_api(stack, technologist, "CT_small.dcm")
    second = upload_by_api(stack, technologist, "MR_small.dcm")
    saves = []  # the X-MedPortal-Save header of each save the page sends
    page.on(
        "request",
        lambda r: saves.append(r.headers.get("x-medportal-save", "button")) if "/save/" in r.url else None,
    )

    page.goto(f"{stack.base_url}/login/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{stack.base_url}/studies/{first['id']}/")
    # The viewer in the page draws the study (OHIF, software WebGL: slow on a busy machine).
    wait_for_image(viewer_frame(page))
    # OHIF's own notice (investigational use), confirmed once as a reader would.
    page.frame_locator("#viewer-frame").get_by_role("button", name="Confirm and hide").click()

    # The study names no body part: the radiologist sets it (the draft never guesses one).
    page.fill("#id_body_part", "HEAD")
    page.click("#body-part-button")
    expect(page.locator("#study-body-part")).to_have_text("HEAD")

    # Draft with an instruction; it is kept and shown in the provenance.
    page.fill("#id_instruction", "Be brief; describe the lung bases.")
    page.click("#draft-button")
    expect(page.locator("#draft-instruction")).to_contain_text("Be brief; describe the lung bases.")
    expect(page.locator("#report-status")).to_have_text("Drafted", timeout=180_000)
    page.locator(".provenance summary").click()
    expect(page.locator("#provenance-instruction")).to_have_text("Be brief; describe the lung bases.")
    page.locator(".provenance summary").click()
    report = Report.objects.get(pk=first["report"]["id"])
    assert report.draft_instruction == "Be brief; describe the lung bases."
    assert report.version == 1
    expect(page.locator("#ai-draft-text")).to_contain_text(report.findings.split("\n")[0][:30])
    expect(page.locator("#ai-diff ins")).to_have_count(0)
    # The draft is on screen once, as the text to edit; the AI's own text and the changes are a
    # click away.
    expect(page.locator("#ai-draft-text")).to_be_hidden()
    page.locator("#ai-draft summary").click()
    expect(page.locator("#ai-draft-text")).to_be_visible()
    page.locator("#ai-draft summary").click()

    # The reading room is dark even where the system prefers light; the toggle switches and is
    # remembered.
    page.emulate_media(color_scheme="light")
    assert background(page) == DARK_BACKGROUND
    page.emulate_media(color_scheme="dark")
    check_layout(page, (1920, 1080), "dark")
    check_layout(page, (1366, 768), "dark")
    page.click("#theme-toggle")
    assert background(page) == LIGHT_BACKGROUND
    page.reload()
    assert background(page) == LIGHT_BACKGROUND
    check_layout(page, (1366, 768), "light")
    check_layout(page, (1920, 1080), "light")
    page.click("#theme-toggle")
    check_narrow_layout(page)
    page.set_viewport_size({"width": 1920, "height": 1080})
    assert background(page) == DARK_BACKGROUND

    # Typing saves by itself a few seconds later: a new version, the diff shows the word.
    findings = page.locator("#id_findings")
    findings.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(" zebra")
    expect(page.locator("#autosave-status")).to_contain_text("Unsaved changes")
    expect(page.locator("#autosave-status")).to_contain_text("(version 2)", timeout=30_000)
    expect(page.locator("#autosave-status")).to_contain_text("Saved at")
    assert saves == ["auto"]  # no click on Save
    version = ReportVersion.objects.get(report=report, number=2)
    assert (version.source, version.author) == (ReportVersion.EDIT, radiologist)
    assert version.findings.endswith(" zebra")
    expect(page.locator("#ai-diff ins")).to_contain_text("zebra")
    expect(page.locator("#report-status")).to_have_text("In review")
    # The text being typed was left alone: still focused, nothing lost.
    assert page.evaluate("document.activeElement.id") == "id_findings"
    expect(findings).to_have_value(version.findings)
    page.screenshot(path=ARTIFACTS / "editor-autosaved.png", caret="initial")

    # Ctrl+S saves at once, with the version the autosave made (no conflict with itself).
    page.keyboard.type(" quokka")
    page.keyboard.press("Control+s")
    expect(page.locator("#autosave-status")).to_contain_text("(version 3)", timeout=30_000)
    assert saves == ["auto", "keyboard"]
    assert Report.objects.get(pk=report.pk).findings.endswith(" zebra quokka")
    expect(page.locator("#ai-diff ins")).to_contain_text("zebra quokka")

    # Someone else saves; the next autosave meets their text and says so, keeping mine to copy.
    in_another_thread(
        editing.report_save,
        report=report,
        user=second_radiologist,
        findings="Ravi's findings.",
        impression="Ravi's impression.",
        expected_version=3,
    )
    page.keyboard.type(" lost?")
    expect(page.locator("#report-panel")).to_contain_text(
        "Someone else saved this report first; their text is shown.", timeout=30_000
    )
    expect(findings).to_have_value("Ravi's findings.")
    expect(page.locator("#unsaved-text")).to_contain_text("zebra quokka lost?")
    page.locator("#report-panel").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "editor-conflict.png", caret="initial")
    assert Report.objects.get(pk=report.pk).version == 4

    # Ctrl+Enter from the editor: the last words are saved and the password field takes focus;
    # Ctrl+Enter there signs the text on the screen.
    findings.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(" Reviewed.")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#report-sign-form input[type=password]")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Control+Enter")
    expect(page.locator("#report-panel")).to_contain_text("Signed by rita", timeout=30_000)
    signed = Report.objects.get(pk=report.pk)
    assert (signed.status, signed.findings) == (ReportStatus.SIGNED, "Ravi's findings. Reviewed.")
    assert signed.version == 5

    # Alt+N claims and opens the next study, also while the viewer has the focus (its keys are
    # its own, MedPortal's three are the page's).
    viewer = viewer_frame(page)
    viewer.locator("body").press("Alt+n")
    page.wait_for_url(f"**/studies/{second['id']}/**")
    expect(page.locator(".messages")).to_contain_text("You claimed")
    assert Report.objects.get(pk=second["report"]["id"]).assigned_to == radiologist
    # Nothing the page did broke its Content-Security-Policy (no inline scripts or styles).
    assert not [text for text in console_errors if "Content Security Policy" in text], console_errors
