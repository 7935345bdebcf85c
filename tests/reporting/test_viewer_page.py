"""The viewer on the study page without JavaScript: series thumbnails, slices, presets and
the header link are links the server renders; viewer.js only takes them over."""

from __future__ import annotations

import html
import io
import re

import pydicom
import pytest
from django.urls import reverse
from pydicom.uid import generate_uid

from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Instance, Series
from medportal.intake.receive import studies_receive
from tests.conftest import dicom_bytes, dicom_path

pytestmark = pytest.mark.usefixtures("image_store")


def ct_slice(number: int, series_uid: str, series_number: int) -> IncomingFile:
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series_uid, series_number, number
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return IncomingFile(f"s{series_number}-{number}.dcm", out.getvalue())


@pytest.fixture
def study(technologist):
    """Series 1: three CT slices given out of order; series 2: one slice."""
    first, second = generate_uid(), generate_uid()
    files = [ct_slice(n, first, 1) for n in (3, 1, 2)] + [ct_slice(1, second, 2)]
    _, [report] = studies_receive(files=files, uploader=technologist, auto_draft=False)
    return report.study


def page(client, study, **query) -> str:
    response = client.get(reverse("study-detail", args=[study.pk]), query)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def viewer_image(text: str) -> str:
    return re.search(r'<img id="viewer-image" src="([^"]+)"', text).group(1)


def link(text: str, element_id: str) -> str:
    return re.search(rf'id="{element_id}" href="([^"]+)"', text).group(1)


def test_each_series_has_a_thumbnail_and_the_first_is_shown(client, technologist, study):
    client.force_login(technologist)
    text = page(client, study)

    series = list(Series.objects.filter(study=study).order_by("series_number"))
    for s in series:
        first = Instance.objects.filter(series=s).order_by("instance_number").first()
        assert f'<img src="{reverse("instance-image", args=[first.pk])}?size=128"' in text
    assert "CT · series 1 · 3 images" in text and "CT · series 2 · 1 image" in text
    slice_one = Instance.objects.get(series=series[0], instance_number=1)
    assert viewer_image(text) == reverse("instance-image", args=[slice_one.pk])
    assert "1 / 3" in text


def test_next_and_previous_walk_the_slices_in_instance_number_order(client, technologist, study):
    client.force_login(technologist)
    series = Series.objects.get(study=study, series_number=1)
    by_number = {i.instance_number: i.pk for i in Instance.objects.filter(series=series)}

    text = page(client, study)
    for number in (2, 3):
        href = link(text, "slice-next")  # "?series=..&slice=..#viewer", as the browser follows it
        response = client.get(reverse("study-detail", args=[study.pk]) + href.split("#")[0])
        text = html.unescape(response.content.decode())
        assert viewer_image(text) == reverse("instance-image", args=[by_number[number]])
        assert f"{number} / 3" in text
    assert 'id="slice-next" aria-disabled="true"' in text
    assert "slice=2" in link(text, "slice-previous")


def test_a_thumbnail_link_opens_its_series(client, technologist, study):
    client.force_login(technologist)
    second = Series.objects.get(study=study, series_number=2)

    text = page(client, study, series=second.pk)

    assert viewer_image(text) == reverse("instance-image", args=[second.instances.get().pk])
    assert "1 / 1" in text
    assert re.search(rf'href="\?series={second.pk}#viewer"[^>]*aria-current="true"', text, re.S)


def test_ct_presets_are_links_that_window_the_image(client, technologist, study):
    client.force_login(technologist)
    text = page(client, study)

    presets = {name: href for href, name in re.findall(r'href="([^"]+)" data-preset="([a-z]+)"', text)}
    assert list(presets) == ["default", "lung", "mediastinum", "bone", "brain", "abdomen", "reset"]
    assert "wc=-600&ww=1500" in presets["lung"]
    assert "wc=" not in presets["default"] and "wc=" not in presets["reset"]

    windowed = page(client, study, series=study.series.first().pk, slice=1, wc=-600, ww=1500)
    assert viewer_image(windowed).endswith("?wc=-600&ww=1500")
    assert "W 1500 · C -600" in windowed
    # The window stays as the slices change.
    assert "wc=-600&ww=1500" in link(windowed, "slice-next")


def test_nonsense_in_the_page_address_is_ignored(client, technologist, study):
    client.force_login(technologist)
    text = page(client, study, series="x", slice=99, wc="nan", ww="-1")
    assert "3 / 3" in text
    assert "?" not in viewer_image(text)


def test_a_colour_multi_frame_instance_scrolls_by_frame_without_window_presets(client, technologist):
    _, [report] = studies_receive(
        files=[IncomingFile("rgb.dcm", dicom_bytes("SC_rgb_rle_2frame.dcm"))],
        uploader=technologist,
        auto_draft=False,
    )
    client.force_login(technologist)
    instance = Instance.objects.get()

    text = page(client, report.study, slice=2)

    assert "2 / 2" in text
    assert viewer_image(text) == f"{reverse('instance-image', args=[instance.pk])}?frame=1"
    assert 'data-preset="lung"' not in text and 'data-preset="default"' not in text
    assert "data-wc=" not in text  # viewer.js: no window by drag on colour


def test_the_header_link_names_the_shown_image(client, technologist, study):
    client.force_login(technologist)
    series = Series.objects.get(study=study, series_number=1)
    second = Instance.objects.get(series=series, instance_number=2)

    text = page(client, study, series=series.pk, slice=2)

    assert link(text, "header-link") == reverse("instance-header", args=[second.pk])
