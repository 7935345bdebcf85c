"""Dictation and the Impression from the Findings in a real browser (Debian's chromium, its fake
microphone playing espeak-ng's speech) against daphne, an ASR worker with the tiny MedASR on its
own queue and a drafting worker with the tiny Gemma 3. The tiny models' words are meaningless: the
test checks that text arrives where the cursor is, and that the audio is gone afterwards."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from medportal.audit.models import AuditEvent
from medportal.reporting.models import Report
from tests.dictation.speech import speech_samples, wav_write
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_browser import CHROMIUM_ARGS
from tests.e2e.test_day_browser import log_in
from tests.e2e.test_editor_browser import upload_by_api

pytestmark = [pytest.mark.e2e]

ASR_QUEUE = f"e2e-asr-{uuid.uuid4().hex[:8]}"
AUDIO_DIR = Path("/tmp") / f"medportal-e2e-audio-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def microphone_page(monkeypatch, tmp_path):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    speech = speech_samples("The lungs are clear. No pleural effusion. Heart size is normal.")
    wav = wav_write(tmp_path / "speech.wav", speech)
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        yield page
        browser.close()


@pytest.mark.stack_env(
    MEDPORTAL_ASR_QUEUE=ASR_QUEUE, MEDPORTAL_ASR_MODEL="tiny", MEDPORTAL_AUDIO_DIR=AUDIO_DIR
)
def test_dictation_reaches_the_cursor_leaves_no_audio_and_the_impression_comes_from_the_findings(
    stack, radiologist, technologist, microphone_page, settings
):
    settings.MEDPORTAL_AUDIO_DIR = AUDIO_DIR
    stack.start_worker(queues=[ASR_QUEUE], name="asr", pool="threads", concurrency=2)
    page = microphone_page
    study = upload_by_api(stack, technologist, "CT_small.dcm")
    log_in(page, stack, "rita")
    page.goto(f"{stack.base_url}/studies/{study['id']}/")
    findings = page.locator("#id_findings")
    findings.fill("")
    findings.click()
    page.keyboard.down("F4")  # push to talk
    expect(page.locator("#dictate-button")).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(4000)
    page.keyboard.up("F4")
    expect(findings).not_to_have_value("", timeout=60_000)
    expect(findings).to_be_focused()
    expect(page.locator("#autosave-status")).to_contain_text("Saved at", timeout=30_000)
    page.screenshot(path=ARTIFACTS / "dictation-1-dictated.png")

    report = Report.objects.get(pk=study["report"]["id"])
    assert report.findings == findings.input_value()
    events = list(
        AuditEvent.objects.filter(
            object_id=str(report.pk), description__startswith="Dictated audio"
        ).values_list("description", flat=True)
    )
    assert events.count("Dictated audio received") >= 1
    assert events.count("Dictated audio received") == events.count("Dictated audio deleted")
    assert "Dictated audio transcribed" in events
    assert list(AUDIO_DIR.glob("*")) == []

    # The Impression from the Findings: streamed beside the field; the field changes only when used.
    findings.fill("A 6 mm nodule in the right upper lobe. No pleural effusion.")
    page.locator("#id_impression").fill("My own impression.")
    page.click("#impression-button")
    expect(page.locator("#impression-use")).to_be_enabled(timeout=60_000)
    suggestion = page.locator("#impression-text").text_content()
    assert suggestion
    expect(page.locator("#id_impression")).to_have_value("My own impression.")
    page.screenshot(path=ARTIFACTS / "dictation-2-impression.png")
    page.click("#impression-use")
    expect(page.locator("#id_impression")).to_have_value(suggestion)
    assert AuditEvent.objects.filter(
        object_id=str(report.pk), description="Impression written from the findings (not saved)"
    ).exists()
