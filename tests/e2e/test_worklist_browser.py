"""The worklist in a real browser (chromium via Playwright) against daphne + Redis: a study
uploaded elsewhere appears without a reload (websocket), filters and sorts swap the list
and keep the URL in step, claim and "Next study" work. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from medportal.reporting.models import Report
from tests.conftest import PASSWORD, dicom_bytes, token_header
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_browser import browser_page  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e]


def upload_by_api(stack, technologist, priority: str) -> dict:
    key = token_header(technologist)["HTTP_AUTHORIZATION"].removeprefix("Token ")
    with stack.http(key) as api:
        response = api.post(
            "/api/studies/",
            files={"files": ("ct.dcm", dicom_bytes("CT_small.dcm"), "application/dicom")},
            data={"priority": priority},
        )
    assert response.status_code == 201, response.text
    return response.json()["studies"][0]


def test_the_worklist_updates_live_filters_sorts_and_claims(
    stack,
    radiologist,
    technologist,
    browser_page,  # noqa: F811
):
    page = browser_page
    page.goto(f"{stack.base_url}/login/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#worklist")).to_contain_text("No studies yet")
    page.wait_for_function("() => window.medportalWorklistLive === true", timeout=10_000)
    page.evaluate("window.notReloaded = true")
    requests = []  # (method, url, background?) of what the page asks the server
    page.on(
        "request",
        lambda r: requests.append((r.method, r.url, "x-medportal-background" in r.headers)),
    )

    study = upload_by_api(stack, technologist, "stat")

    row = page.locator("#worklist-rows tr", has_text="1CT1")
    expect(row).to_be_visible(timeout=10_000)
    expect(row).to_contain_text("STAT")
    assert page.evaluate("window.notReloaded") is True  # it came over the websocket, not a reload
    # That refresh was the page's own doing: it does not count as the user being active.
    assert ("GET", f"{stack.base_url}/", True) in requests
    page.screenshot(path=ARTIFACTS / "worklist-1-live.png")

    page.select_option("#id_priority", "routine")
    expect(page.locator("#worklist")).to_contain_text("No studies match these filters.")
    assert "priority=routine" in page.url
    page.select_option("#id_priority", "stat")
    expect(row).to_be_visible()

    page.get_by_role("link", name="MRN", exact=True).click()
    expect(page.locator("th[aria-sort=ascending]")).to_have_text("MRN ▲")
    assert "sort=mrn" in page.url and "priority=stat" in page.url

    row.get_by_role("button", name="Claim").click()
    expect(page.locator("#worklist-notice")).to_contain_text("You claimed")
    expect(row).to_contain_text("rita")
    expect(row.get_by_role("button", name="Release")).to_be_visible()
    claim_url = f"{stack.base_url}/reports/{study['report']['id']}/claim/"
    assert ("POST", claim_url, False) in requests  # the user's own click counts
    assert Report.objects.get(study_id=study["id"]).assigned_to == radiologist
    page.screenshot(path=ARTIFACTS / "worklist-2-claimed.png")

    row.get_by_role("button", name="Release").click()
    expect(row.get_by_role("button", name="Claim")).to_be_visible()
    page.click("#next-study")
    expect(page.locator(".messages")).to_contain_text("You claimed")
    # The viewer may add its series/slice to the query string once it has loaded.
    assert page.evaluate("location.pathname") == f"/studies/{study['id']}/"
    assert page.evaluate("window.notReloaded") is None  # a real navigation this time
