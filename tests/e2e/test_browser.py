"""The study page in a real browser (Debian's chromium driven by Playwright): log in,
upload, watch the draft stream in, edit, sign. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright
from pypdf import PdfReader

from medportal.reporting.models import Report, ReportStatus
from tests.conftest import PASSWORD, dicom_path
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_ohif_browser import viewer_frame, wait_for_image, watch_errors

pytestmark = [pytest.mark.e2e]

# WebGL through SwiftShader (software): the study page's viewer (OHIF) draws with WebGL.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM reads are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = watch_errors(browser.new_page(viewport={"width": 1920, "height": 1080}))
        yield page
        browser.close()


def test_a_radiologist_uploads_watches_the_draft_stream_edits_and_signs(stack, radiologist, browser_page):
    page = browser_page
    page.goto(f"{stack.base_url}/login/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Worklist")).to_be_visible()
    expect(page.locator("#test-model-banner")).to_contain_text("meaningless")

    page.goto(f"{stack.base_url}/studies/upload/")
    page.set_input_files("#id_files", str(dicom_path("CT_small.dcm")))
    page.fill("#id_indication", "Trauma; rule out haemorrhage.")
    page.click("#upload-form button[type=submit]")
    outcome = page.locator("#upload-outcome")
    expect(outcome).to_contain_text("Stored 1 image")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    page.screenshot(path=ARTIFACTS / "browser-1-uploaded.png")
    outcome.get_by_role("link").first.click()

    # The viewer in the page draws the study's image (OHIF in the iframe; slow on a busy machine).
    page.wait_for_selector("#viewer-frame")
    assert wait_for_image(viewer_frame(page))["width"] > 300
    expect(page.locator("#id_indication")).to_have_value("Trauma; rule out haemorrhage.")
    # The study names no body part: the radiologist sets it (the draft never guesses one).
    page.fill("#id_body_part", "HEAD")
    page.click("#body-part-button")
    expect(page.locator("#study-body-part")).to_have_text("HEAD")

    # Record every length the streamed text takes, to see it arrive piece by piece.
    page.evaluate(
        """() => {
            window.draftLengths = [];
            new MutationObserver(() => {
                const out = document.querySelector('#draft-stream');
                if (out) window.draftLengths.push(out.textContent.length);
            }).observe(document.body, {subtree: true, childList: true, characterData: true});
        }"""
    )
    page.click("#draft-button")
    expect(page.locator("#report-status")).to_have_text("Drafted", timeout=60_000)
    lengths = page.evaluate("window.draftLengths")
    assert len(set(lengths)) > 3, f"the draft did not stream in pieces: {lengths[:20]}"
    report = Report.objects.get(status=ReportStatus.DRAFTED)
    assert max(lengths) == len(report.draft_text)
    expect(page.locator("#id_findings")).to_have_value(report.findings)
    page.screenshot(path=ARTIFACTS / "browser-2-drafted.png")

    page.fill("#id_findings", "No intracranial haemorrhage.")
    page.fill("#id_impression", "Normal CT head.")
    page.click("#save-button")
    expect(page.locator("#report-panel")).to_contain_text("Saved (version 2)")

    page.fill("#report-sign-form #id_password", "not my password")
    page.click("#sign-button")
    expect(page.locator("#report-panel")).to_contain_text("The password is not correct")
    page.fill("#report-sign-form #id_password", PASSWORD)
    page.click("#sign-button")
    expect(page.locator("#report-panel")).to_contain_text("Signed by rita")
    expect(page.locator("#id_findings")).to_have_count(0)
    page.screenshot(path=ARTIFACTS / "browser-3-signed.png")

    signed = Report.objects.get(pk=report.pk)
    assert (signed.status, signed.findings, signed.impression) == (
        ReportStatus.SIGNED,
        "No intracranial haemorrhage.",
        "Normal CT head.",
    )

    # A correction after sign-off is an addendum, signed again.
    page.click("details.addendum-form summary")
    page.fill("#report-addendum-form textarea", "Small left frontal scalp haematoma.")
    page.fill("#report-addendum-form input[type=password]", PASSWORD)
    page.click("#addendum-sign-button")
    expect(page.locator("#addendum-1")).to_contain_text("Small left frontal scalp haematoma.")
    expect(page.locator("#report-status")).to_have_text("Amended")

    # The signed report leaves as a PDF with its addendum and the AI provenance.
    with page.expect_download() as download:
        page.click("#export-pdf")
    pdf_path = ARTIFACTS / "browser-4-report.pdf"
    download.value.save_as(pdf_path)
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(pdf_path).pages).split())
    assert "No intracranial haemorrhage." in text and "Normal CT head." in text
    assert "Small left frontal scalp haematoma." in text
    assert "AI-assisted" in text and "tiny" in text
    page.screenshot(path=ARTIFACTS / "browser-4-amended-exported.png", full_page=True)
