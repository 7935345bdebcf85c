"""The study page's viewer in a real browser (chromium via Playwright, against daphne):
a 20-slice CT series and a 3-slice one uploaded through the page, then thumbnails, wheel and
key scrolling, window by drag, the lung preset, zoom, pan and the DICOM header.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pydicom
import pytest
from playwright.sync_api import expect
from pydicom.uid import generate_uid

from medportal.audit.models import AuditEvent
from medportal.imaging.models import Instance, Series
from tests.conftest import PASSWORD, dicom_path
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_browser import browser_page  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e]


def ct_series(folder: Path, *, study_uid: str, number: int, slices: int) -> list[Path]:
    """CT_small as a series of ``slices`` instances (new SOP Instance UIDs, Instance Numbers
    1..n), each slice a little brighter than the one before, so scrolling shows a change."""
    series_uid = generate_uid()
    paths = []
    for index in range(slices):
        ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SeriesNumber = study_uid, series_uid, number
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = index + 1
        ds.ImagePositionPatient = [0, 0, 5 * index]
        pixels = ds.pixel_array.astype(np.int32) + 15 * index
        ds.PixelData = np.clip(pixels, -32768, 32767).astype(np.int16).tobytes()
        path = folder / f"series{number}-{index + 1:02d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def window_of(src: str) -> tuple[float, float] | None:
    query = parse_qs(urlparse(src).query)
    return (float(query["wc"][0]), float(query["ww"][0])) if "wc" in query else None


def test_a_radiologist_scrolls_windows_zooms_and_reads_the_header(
    stack,
    radiologist,
    browser_page,  # noqa: F811
    tmp_path,
):
    study_uid = generate_uid()
    files = ct_series(tmp_path, study_uid=study_uid, number=1, slices=20)
    files += ct_series(tmp_path, study_uid=study_uid, number=2, slices=3)
    page = browser_page
    page.goto(f"{stack.base_url}/login/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{stack.base_url}/studies/upload/")
    page.set_input_files("#id_files", [str(path) for path in files])
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-outcome")).to_contain_text("Stored 23 images", timeout=30_000)
    page.locator("#upload-outcome").get_by_role("link").first.click()

    first, second = Series.objects.filter(study__study_uid=study_uid).order_by("series_number")
    slice_ids = list(
        Instance.objects.filter(series=first).order_by("instance_number").values_list("pk", flat=True)
    )
    image = page.locator("#viewer-image")
    counter = page.locator("#slice-counter")

    def shows_slice(number: int) -> None:
        expect(counter).to_have_text(f"{number} / 20")
        expect(image).to_have_attribute("src", re.compile(rf"/instances/{slice_ids[number - 1]}/image\.png"))

    # Thumbnails: one per series, rendered small by the server.
    thumbs = page.locator(".series-thumb img")
    expect(thumbs).to_have_count(2)
    for index in range(2):
        expect(thumbs.nth(index)).to_have_js_property("complete", True)
        assert thumbs.nth(index).evaluate("img => img.naturalWidth") == 128
    expect(page.locator(".series-thumb").nth(0)).to_contain_text("20 images")
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") == 128  # the full image: CT_small is 128×128
    shows_slice(1)
    page.screenshot(path=ARTIFACTS / "viewer-1-opened.png")

    # The wheel scrolls, one slice per notch, both ways.
    page.hover("#viewport")
    for _ in range(3):
        page.mouse.wheel(0, 100)
    shows_slice(4)
    page.mouse.wheel(0, -100)
    shows_slice(3)

    # So do the keys, once the viewport has focus.
    page.focus("#viewport")
    page.keyboard.press("ArrowDown")
    shows_slice(4)
    page.keyboard.press("PageDown")
    shows_slice(14)
    page.keyboard.press("PageDown")
    shows_slice(20)  # not beyond the last
    page.keyboard.press("PageUp")
    shows_slice(10)
    page.keyboard.press("Home")
    shows_slice(1)
    page.keyboard.press("ArrowUp")
    shows_slice(1)
    page.keyboard.press("End")
    shows_slice(20)
    page.keyboard.press("ArrowUp")
    shows_slice(19)
    expect(page).to_have_url(re.compile(r"slice=19\b"))  # a reload or a shared link shows the same slice
    page.screenshot(path=ARTIFACTS / "viewer-2-scrolled.png")

    # Window by drag: right widens the window, down raises the centre.
    assert window_of(image.get_attribute("src")) is None  # the default window so far
    box = page.locator("#viewport").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y + 60, steps=8)
    page.mouse.up()
    readout = page.locator("#window-readout")
    expect(readout).to_have_text(re.compile(r"^W \d+ · C -?\d+$"))
    ww, wc = (float(v) for v in re.findall(r"-?\d+", readout.text_content()))
    start_wc, start_ww = (
        float(page.locator(".series-thumb").nth(0).get_attribute(f"data-{k}")) for k in ("wc", "ww")
    )
    assert ww > start_ww and wc > start_wc
    # The image follows (requests are coalesced while the drag moves): the server renders that window.
    expect(image).to_have_attribute("src", re.compile(rf"\?wc={wc:g}&ww={ww:g}$"))
    expect(counter).to_have_text("19 / 20")  # dragging does not scroll
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") == 128
    page.screenshot(path=ARTIFACTS / "viewer-3-window-dragged.png")

    # The lung preset.
    page.click("#window-presets [data-preset=lung]")
    expect(image).to_have_attribute("src", re.compile(r"/instances/\d+/image\.png\?wc=-600&ww=1500$"))
    expect(page.locator("#window-readout")).to_have_text("W 1500 · C -600")
    expect(page.locator("#window-presets [data-preset=lung]")).to_have_class(re.compile(r"\bactive\b"))
    expect(image).to_have_js_property("complete", True)
    # The window stays while scrolling.
    page.focus("#viewport")
    page.keyboard.press("ArrowDown")
    shows_slice(20)
    expect(image).to_have_attribute("src", re.compile(r"\?wc=-600&ww=1500$"))
    page.screenshot(path=ARTIFACTS / "viewer-4-lung.png")

    # Zoom with the buttons and with Ctrl + wheel; pan in pan mode and with Shift + drag.
    width_before = image.bounding_box()["width"]
    page.click("[data-zoom=in]")
    page.click("[data-zoom=in]")
    expect(page.locator("#zoom-readout")).to_have_text("156%")
    assert image.bounding_box()["width"] == pytest.approx(width_before * 1.5625, rel=0.01)
    page.hover("#viewport")
    page.keyboard.down("Control")
    page.mouse.wheel(0, -100)
    page.keyboard.up("Control")
    expect(page.locator("#zoom-readout")).to_have_text("195%")
    expect(counter).to_have_text("20 / 20")  # Ctrl + wheel zooms, it does not scroll
    left_before = image.bounding_box()["x"]
    page.click("#pan-mode")
    expect(page.locator("#pan-mode")).to_have_attribute("aria-pressed", "true")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 80, y, steps=5)
    page.mouse.up()
    assert image.bounding_box()["x"] == pytest.approx(left_before + 80, abs=1)
    expect(image).to_have_attribute("src", re.compile(r"\?wc=-600&ww=1500$"))  # panning is not windowing
    page.click("#pan-mode")
    page.keyboard.down("Shift")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 40, y, steps=5)
    page.mouse.up()
    page.keyboard.up("Shift")
    assert image.bounding_box()["x"] == pytest.approx(left_before + 40, abs=1)
    page.screenshot(path=ARTIFACTS / "viewer-5-zoomed.png")
    page.click("#window-presets [data-preset=reset]")
    expect(page.locator("#zoom-readout")).to_have_text("100%")
    expect(page.locator("#window-readout")).to_have_text("Default window")
    expect(image).to_have_attribute("src", re.compile(rf"/instances/{slice_ids[19]}/image\.png$"))

    # The DICOM header of the slice shown, and of the next one after scrolling.
    page.click("#header-view summary")
    table = page.locator("#header-content .header-table")
    expect(table).to_contain_text("Modality")
    expect(table).to_contain_text("1CT1")
    expect(table).not_to_contain_text("Pixel Data")
    last = Instance.objects.get(pk=slice_ids[19])
    expect(page.locator("#header-content")).to_contain_text(last.sop_instance_uid)
    page.screenshot(path=ARTIFACTS / "viewer-6-header.png", full_page=True)
    page.focus("#viewport")
    page.keyboard.press("ArrowUp")
    previous = Instance.objects.get(pk=slice_ids[18])
    expect(page.locator("#header-content")).to_contain_text(previous.sop_instance_uid)
    assert AuditEvent.objects.filter(description="Header viewed", object_id=str(previous.pk)).exists()

    # The second series' thumbnail shows that series.
    page.locator(".series-thumb").nth(1).click()
    expect(counter).to_have_text("1 / 3")
    second_first = Instance.objects.filter(series=second).order_by("instance_number").first()
    expect(image).to_have_attribute("src", re.compile(rf"/instances/{second_first.pk}/image\.png$"))
    expect(page.locator(".series-thumb").nth(1)).to_have_attribute("aria-current", "true")
    page.screenshot(path=ARTIFACTS / "viewer-7-second-series.png")

    # The images fetched were recorded as looks at the patient's images: slices, windows, thumbnails.
    events = AuditEvent.objects.filter(description="Image viewed", patient_id="1CT1")
    seen = {int(pk) for pk in events.values_list("object_id", flat=True)}
    assert {slice_ids[0], slice_ids[3], slice_ids[18], slice_ids[19], second_first.pk} <= seen
    details = list(events.values_list("detail", flat=True))
    assert {"frame": 0, "window": [-600.0, 1500.0]} in details
    assert {"frame": 0, "size": 128} in details
