"""The radiologist's day in a real browser (Debian's chromium via Playwright) against daphne and
a Celery worker: the proofread before sign-off. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from medportal.audit.models import AuditEvent
from medportal.reporting.models import Report, ReportStatus
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_browser import browser_page  # noqa: F401  (the fixture)
from tests.e2e.test_editor_browser import upload_by_api

pytestmark = [pytest.mark.e2e]


def log_in(page, stack, username: str) -> None:
    page.goto(f"{stack.base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def sign(page) -> None:
    page.fill("#report-sign-form input[type=password]", PASSWORD)
    page.click("#sign-button")


def test_the_proofread_stops_a_sign_off_until_each_finding_is_fixed_or_signed_anyway(
    stack,
    radiologist,
    technologist,
    browser_page,  # noqa: F811
):
    page = browser_page
    study = upload_by_api(stack, technologist, "CT_small.dcm")
    log_in(page, stack, "rita")
    page.goto(f"{stack.base_url}/studies/{study['id']}/")
    page.fill("#id_findings", "A 6 mm nodule in the right upper lobe.")
    page.fill("#id_impression", "")
    page.click("#save-button")
    expect(page.locator("#report-panel")).to_contain_text("Saved (version 1)")

    sign(page)
    expect(page.locator("#proofread-empty_impression")).to_contain_text("The Impression is empty.")
    page.locator("#proofread-empty_impression .proofread-fix").click()
    expect(page.locator("#id_impression")).to_be_focused()
    page.keyboard.type("Left upper lobe nodule, 8 mm.")
    sign(page)  # the words are saved first, then proofread again
    expect(page.locator("#proofread-laterality_sections")).to_contain_text("“left”")
    expect(page.locator("#proofread-measurement_mismatch")).to_contain_text("8 mm")
    expect(page.locator("#proofread-empty_impression")).to_have_count(0)
    page.screenshot(path=ARTIFACTS / "day-proofread.png")
    page.check("#proofread-laterality_sections input[name=sign_anyway]")
    page.check("#proofread-measurement_mismatch input[name=sign_anyway]")
    sign(page)
    expect(page.locator("#report-panel")).to_contain_text("Signed by rita", timeout=30_000)
    report = Report.objects.get(pk=study["report"]["id"])
    assert (report.status, report.impression) == (ReportStatus.SIGNED, "Left upper lobe nodule, 8 mm.")
    descriptions = set(
        AuditEvent.objects.filter(object_id=str(report.pk)).values_list("description", flat=True)
    )
    assert {
        "Proofread before sign-off: findings shown",
        "Proofread before sign-off: fix chosen",
        "Proofread before sign-off: sign anyway chosen",
    } <= descriptions
