"""The radiologist's day in a real browser (Debian's chromium via Playwright) against daphne and
Celery workers: the proofread before sign-off, and the follow-up the signed text recommends closed
by the patient's next study; a critical result e-mailed by the interfaces worker, escalated, and
acknowledged by the clinician through the link. Screenshots go to test-artifacts/."""

from __future__ import annotations

import datetime
import re
import uuid
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from medportal.audit.models import AuditEvent
from medportal.communication.models import CriticalResult, FollowUp
from medportal.reporting.models import Report, ReportStatus
from tests.communication.test_followups import ct_of_the_same_patient
from tests.conftest import PASSWORD, token_header
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
    page.keyboard.type("Left upper lobe nodule, 8 mm. CT chest in 3 months for the nodule.")
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
    assert (report.status, report.impression) == (
        ReportStatus.SIGNED,
        "Left upper lobe nodule, 8 mm. CT chest in 3 months for the nodule.",
    )
    descriptions = set(
        AuditEvent.objects.filter(object_id=str(report.pk)).values_list("description", flat=True)
    )
    assert {
        "Proofread before sign-off: findings shown",
        "Proofread before sign-off: fix chosen",
        "Proofread before sign-off: sign anyway chosen",
    } <= descriptions

    # The signed report recommends a CT: confirmed, it is tracked until the patient's next CT arrives.
    page.reload()
    recommendation = page.locator("form.follow-up-recommendation")
    expect(recommendation.locator("input[name=text]")).to_have_value("CT chest in 3 months for the nodule.")
    expect(recommendation.locator("select[name=modality]")).to_have_value("CT")
    recommendation.locator(".follow-up-confirm").click()
    expect(page.locator("#follow-ups")).to_contain_text("CT chest in 3 months for the nodule. · CT · due")
    follow_up = FollowUp.objects.get(report=report)
    page.click("nav >> text=Follow-ups")
    expect(page.locator(f"#follow-ups-open #follow-up-row-{follow_up.pk}")).to_be_visible()
    key = token_header(technologist)["HTTP_AUTHORIZATION"].removeprefix("Token ")
    later = ct_of_the_same_patient("CT")
    with stack.http(key) as api:
        assert (
            api.post(
                "/api/studies/", files={"files": (later.name, later.data, "application/dicom")}
            ).status_code
            == 201
        )
    page.reload()
    expect(page.locator(f"#follow-ups-closed #follow-up-row-{follow_up.pk}")).to_contain_text("CT received")
    page.screenshot(path=ARTIFACTS / "day-follow-ups.png")


INTERFACES = f"e2e-interfaces-{uuid.uuid4().hex[:8]}"
MAIL_DIR = Path("/tmp") / f"medportal-e2e-mail-{uuid.uuid4().hex[:8]}"


@pytest.mark.stack_env(
    MEDPORTAL_INTERFACES_QUEUE=INTERFACES, MEDPORTAL_EMAIL_BACKEND="file", MEDPORTAL_EMAIL_FILE_PATH=MAIL_DIR
)
def test_a_critical_result_is_emailed_escalates_and_is_acknowledged_through_its_link(
    stack,
    radiologist,
    technologist,
    browser_page,  # noqa: F811
):
    stack.start_worker(queues=[INTERFACES], name="interfaces", pool="threads", concurrency=2)
    page = browser_page
    study = upload_by_api(stack, technologist, "CT_small.dcm")
    log_in(page, stack, "rita")
    page.goto(f"{stack.base_url}/studies/{study['id']}/")
    page.click(".critical-mark summary")
    page.select_option("#id_category", "ACR category 1: immediate (minutes)")
    page.fill("#id_finding", "Tension pneumothorax, right.")
    page.click("#critical-mark-button")
    article = page.locator("#communication-panel article.critical")
    expect(article).to_contain_text("Not yet communicated.")
    article.locator("input[name=recipient]").fill("Dr Jones")
    article.locator("select[name=method]").select_option("email_link")
    article.locator("input[name=email]").fill("jones@example.org")
    article.locator(".critical-notify-button").click()
    expect(article).to_contain_text("Communicated to Dr Jones by MedPortal e-mail")
    expect(article).to_contain_text("Not yet acknowledged.")

    # The interfaces worker sends it; nobody answers in time and it escalates.
    critical = CriticalResult.objects.get(report_id=study["report"]["id"])
    deadline = timezone.now() + datetime.timedelta(seconds=60)
    while not list(MAIL_DIR.glob("*.log")) and timezone.now() < deadline:
        page.wait_for_timeout(250)
    (mail,) = MAIL_DIR.glob("*.log")
    link = re.search(r"(http://127\.0\.0\.1:\d+/critical/ack/\S+/)", mail.read_text()).group(1)
    CriticalResult.objects.filter(pk=critical.pk).update(
        created_at=timezone.now() - datetime.timedelta(hours=2)
    )
    page.click("nav >> text=Critical results")
    row = page.locator(f"#critical-row-{critical.pk}")
    expect(row).to_have_class(re.compile("escalated"))
    expect(row).to_contain_text("Escalated")
    page.screenshot(path=ARTIFACTS / "day-critical-escalated.png")

    # The clinician opens the link (no MedPortal account) and confirms.
    clinician = page.context.browser.new_page()
    clinician.goto(link)
    expect(clinician.locator("#ack-finding")).to_have_text("Tension pneumothorax, right.")
    clinician.fill("#id_name", "Dr A. Jones")
    clinician.click("#ack-button")
    expect(clinician.locator("#ack-done")).to_contain_text("Acknowledged by Dr A. Jones")
    page.reload()
    expect(page.locator("#critical-waiting")).not_to_contain_text("Tension pneumothorax")
    expect(page.locator("#critical-done")).to_contain_text(
        "Acknowledged by Dr A. Jones (opened the link and confirmed)"
    )
    assert [
        e
        for e in AuditEvent.objects.filter(object_type="critical_result", object_id=str(critical.pk))
        .order_by("id")
        .values_list("description", flat=True)
    ] == [
        "Critical result marked",
        "Critical result notification queued",
        "Critical result e-mail sent",
        "Critical result escalated: not acknowledged in time",
        "Critical result link opened",
        "Critical result acknowledged",
    ]
