"""The reading room's viewer in a real browser: OHIF, as MedPortal serves it under /viewer/, in
Debian's chromium (Playwright), loads a two-series CT from MedPortal's DICOMweb with the login
session and draws it; the wheel scrolls to other slices, a window preset changes the pixels; the
patient's prior opens beside it; an anonymous visitor gets the login page; nothing breaks the
Content-Security-Policy, nothing goes to another origin, and each study's look is one audit event.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import uuid

import numpy as np
import pydicom
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import sync_playwright
from pydicom.uid import generate_uid

from medportal.audit.models import AuditEvent, EventType
from medportal.imaging.models import Study
from medportal.ohif.links import viewer_url
from tests.conftest import PASSWORD, dicom_path
from tests.dicomweb_server import dicomweb_server  # noqa: F401  (the fixture)
from tests.e2e.conftest import ARTIFACTS

pytestmark = [pytest.mark.e2e]

# WebGL through SwiftShader (software): OHIF draws with WebGL; --disable-gpu would leave it none.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

# Waits for the viewer poll on a timer: Playwright's default polls on requestAnimationFrame, which
# under SwiftShader's load can go unrun while OHIF draws (CI once timed out on a viewer that had
# drawn: the failure's own read of the canvas found the image).
POLL_MS = 250

# The viewport's canvas, as numbers: its size, mean grey and a fingerprint of its pixels.
CANVAS = """() => {
  const canvas = document.querySelector('.cornerstone-canvas');
  if (!canvas || !canvas.width) return null;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0, hash = 0;
  for (let i = 0; i < data.length; i += 4) { sum += data[i]; hash = (hash * 31 + data[i]) | 0; }
  return {width: canvas.width, height: canvas.height, mean: sum / (data.length / 4), hash};
}"""


# Every viewport's canvas drawn (not blank): how many there are, and how many show an image.
CANVASES = """() => {
  const canvases = [...document.querySelectorAll('.cornerstone-canvas')].filter(c => c.width);
  const drawn = canvases.filter(c => {
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) sum += data[i];
    return sum / (data.length / 4) > 5;
  });
  return {viewports: canvases.length, drawn: drawn.length};
}"""


def ct_series(*, study: str, number: int, slices: int, study_date: str = "") -> list[pydicom.Dataset]:
    """CT_small as a series: a bright block moves down the image slice by slice, so every slice
    looks different under any window."""
    series = generate_uid()
    out = []
    for index in range(slices):
        ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SeriesNumber = study, series, number
        ds.SeriesDescription = f"Axial {number}"
        if study_date:
            ds.StudyDate = study_date
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = index + 1
        ds.ImagePositionPatient = [0, 0, -5 * index]
        ds.WindowCenter, ds.WindowWidth = 1000, 2000
        pixels = ds.pixel_array.astype(np.int32)
        row = 4 + 5 * index
        pixels[row : row + 12, 20:108] = 3000
        ds.PixelData = pixels.astype(np.int16).tobytes()
        out.append(ds)
    return out


def watch_errors(page):
    """Keep the page's console errors and uncaught exceptions (its frames' too) on the page, for
    a failure to show."""
    page.errors_seen = []
    page.on("console", lambda m: page.errors_seen.append(m.text[:300]) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors_seen.append(f"uncaught: {str(e)[:300]}"))
    return page


def viewer_frame(page):
    """The reading room's viewer frame, once its iframe is in the page and attached."""
    return page.wait_for_selector("#viewer-frame").content_frame()


def wait_for_image(page, *, timeout_s: float = 90):
    """The canvas once it shows an image (not blank). If it never does, the failure says what the
    viewer showed instead (its text, its canvases) and a screenshot of the whole page is kept."""
    try:
        page.wait_for_function(
            f"() => {{ const s = ({CANVAS})(); return s && s.mean > 5; }}",
            timeout=timeout_s * 1000,
            polling=POLL_MS,
        )
    except PlaywrightTimeoutError:
        top = page.page if hasattr(page, "page") else page
        top.screenshot(path=ARTIFACTS / f"viewer-not-drawn-{uuid.uuid4().hex[:8]}.png")
        shown = page.evaluate("() => document.body ? document.body.innerText.slice(0, 600) : '(no body)'")
        animating = page.evaluate(  # whether the frame still gets animation frames (within 1 s)
            "() => new Promise(done => {"
            " requestAnimationFrame(() => done(true)); setTimeout(() => done(false), 1000); })"
        )
        raise AssertionError(
            f"the viewer drew no image in {timeout_s} s at {page.url}; canvas: {page.evaluate(CANVAS)}; "
            f"canvases: {page.evaluate(CANVASES)}; animation frames run: {animating}; it showed: {shown!r}; "
            f"browser errors: {getattr(top, 'errors_seen', '(not watched)')}"
        ) from None
    return page.evaluate(CANVAS)


def settled(page, before_hash: int | None = None) -> dict:
    """The canvas after it stopped changing (and, given ``before_hash``, once it differs from it)."""
    condition = "s && s.mean > 5" + (f" && s.hash !== {before_hash}" if before_hash is not None else "")
    page.wait_for_function(
        f"() => {{ const s = ({CANVAS})(); return {condition}; }}", timeout=30_000, polling=POLL_MS
    )
    page.wait_for_timeout(300)
    return page.evaluate(CANVAS)


def test_ohif_draws_a_ct_from_medportal_scrolls_and_windows_it(
    dicomweb_server,  # noqa: F811
    transactional_db,
    radiologist,
    technologist,
):
    study_uid = generate_uid()
    first, second = (
        ct_series(study=study_uid, number=1, slices=20),
        ct_series(study=study_uid, number=2, slices=5),
    )
    # The same patient's CT of a year before (CT_small is of 2004-01-19): the prior to compare with.
    prior_series = ct_series(study=generate_uid(), number=1, slices=5, study_date="20030115")
    dicomweb_server.client(technologist).store_instances([*first, *second, *prior_series])
    study = Study.objects.get(study_uid=study_uid)
    prior = Study.objects.get(study_uid=prior_series[0].StudyInstanceUID)
    base = dicomweb_server.base_url
    url = base + viewer_url(study)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            # Anonymous: the viewer is not served, the login page is.
            anonymous = browser.new_page()
            anonymous.goto(url)
            assert anonymous.url.startswith(f"{base}/login/")
            anonymous.close()

            page = watch_errors(browser.new_page(viewport={"width": 1600, "height": 1000}))
            elsewhere = []
            page.on(
                "request",
                lambda r: elsewhere.append(r.url) if not r.url.startswith((base, "blob:", "data:")) else None,
            )
            page.goto(f"{base}/login/")
            page.fill("#id_username", "rita")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.goto(url)

            opened = wait_for_image(page)
            assert opened["width"] > 300
            # Both series are in the study panel, by their descriptions.
            page.get_by_text("Axial 2").first.wait_for(timeout=30_000)
            page.screenshot(path=ARTIFACTS / "ohif-1-opened.png")

            # The wheel scrolls through the slices: the block moves, the pixels change.
            viewport = page.locator(".cornerstone-canvas").first
            viewport.hover()
            for _ in range(6):
                page.mouse.wheel(0, 120)
                page.wait_for_timeout(100)
            scrolled = settled(page, opened["hash"])
            assert scrolled["hash"] != opened["hash"]
            page.screenshot(path=ARTIFACTS / "ohif-2-scrolled.png")

            # A window preset (OHIF's key 2: lung, W 1500 / L -600): the same slice, other greys.
            viewport.click()
            page.keyboard.press("2")
            lung = settled(page, scrolled["hash"])
            assert abs(lung["mean"] - scrolled["mean"]) > 5
            page.screenshot(path=ARTIFACTS / "ohif-3-lung-preset.png")

            # The prior beside it (the reading room's "beside" link): one viewport each, both drawn.
            page.goto(base + viewer_url(study, beside=prior))
            page.wait_for_function(
                f"() => {{ const s = ({CANVASES})(); return s.viewports >= 2 && s.drawn === s.viewports; }}",
                timeout=90_000,
                polling=POLL_MS,
            )
            page.screenshot(path=ARTIFACTS / "ohif-4-beside-prior.png")

            # No Content Security Policy refusal, no uncaught exception.
            refused = ("Content Security Policy", "Refused to")
            problems = [
                error
                for error in page.errors_seen
                if any(words in error for words in refused) or error.startswith("uncaught:")
            ]
            assert problems == []
            assert elsewhere == []
        finally:
            browser.close()

    # However many requests that took, it is one look at each study, naming the series opened.
    events = AuditEvent.objects.filter(event_type=EventType.INSTANCES_ACCESSED, user=radiologist)
    [event] = events.filter(study_uid=study_uid)
    [prior_event] = events.filter(study_uid=prior.study_uid)
    assert prior_event.detail["series"] == [prior_series[0].SeriesInstanceUID]
    assert event.detail["series"] == sorted([first[0].SeriesInstanceUID, second[0].SeriesInstanceUID])
