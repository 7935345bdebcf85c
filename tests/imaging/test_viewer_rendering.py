"""The viewer's server side: images in a requested window (``wc``/``ww``), thumbnails
(``size``), their ETags, and the DICOM header view (``/instances/<id>/header/``)."""

from __future__ import annotations

import io
import re

import numpy as np
import pydicom
import pytest
from django.urls import reverse
from PIL import Image
from pydicom.uid import generate_uid

from medportal.audit.models import AuditEvent, EventType
from medportal.imaging.ingest import IncomingFile, study_ingest
from medportal.imaging.models import Instance
from medportal.imaging.pixels import display_array
from tests.conftest import dicom_bytes, dicom_path
from tests.imaging.test_pixels import RAMP, grey_dataset

pytestmark = pytest.mark.usefixtures("image_store")


def stored(user, name: str, data: bytes, **kwargs) -> Instance:
    study_ingest(files=[IncomingFile(name, data)], uploader=user, **kwargs)
    return Instance.objects.get(original_name=name)


def saved(ds: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def wide_ct() -> bytes:
    """CT_small tiled into a 256×384 image (rows × columns): big enough to shrink, not square."""
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    ds.PixelData = np.tile(ds.pixel_array, (2, 3)).astype(ds.pixel_array.dtype).tobytes()
    ds.Rows, ds.Columns = 256, 384
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    return saved(ds)


@pytest.fixture
def ct(technologist) -> Instance:
    return stored(technologist, "CT_small.dcm", dicom_bytes("CT_small.dcm"))


def png_of(response) -> np.ndarray:
    assert response.status_code == 200, response.content[:200]
    assert response["Content-Type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def image(client, instance: Instance, **query):
    return client.get(reverse("instance-image", args=[instance.pk]), query)


def image_events(instance: Instance):
    return AuditEvent.objects.filter(
        event_type=EventType.INSTANCES_ACCESSED, object_id=str(instance.pk), description="Image viewed"
    )


# -- windows ---------------------------------------------------------------------------------


def test_a_requested_window_gives_the_pixels_display_array_gives_for_it(client, technologist, ct):
    client.force_login(technologist)

    lung = png_of(image(client, ct, wc=-600, ww=1500))

    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    assert np.array_equal(lung, display_array(ds, center=-600, width=1500))
    # Which is the linear window on Hounsfield units: -1350 HU and below black, 150 HU and above white.
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert (lung[hu <= -1350] == 0).all()
    assert (lung[hu >= 150] == 255).all()
    inside = (hu > -1300) & (hu < 100)
    expected = np.round((hu[inside] - (-600 - 0.5)) / 1499 * 255 + 127.5)
    assert np.abs(lung[inside].astype(int) - expected).max() <= 1


def test_different_windows_show_different_pixels(client, technologist, ct):
    client.force_login(technologist)
    default = png_of(image(client, ct))
    lung = png_of(image(client, ct, wc=-600, ww=1500))
    brain = png_of(image(client, ct, wc=40, ww=80))

    assert not np.array_equal(default, lung)
    assert not np.array_equal(lung, brain)
    # A narrow window leaves few greys: most of the slice is black or white.
    assert np.isin(brain, [0, 255]).mean() > np.isin(lung, [0, 255]).mean()


def test_the_headers_own_window_requested_explicitly_looks_like_the_default(client, technologist):
    mr = stored(technologist, "MR_small.dcm", dicom_bytes("MR_small.dcm"))  # header window 600/1600
    client.force_login(technologist)
    assert np.array_equal(png_of(image(client, mr, wc=600, ww=1600)), png_of(image(client, mr)))


def test_a_window_on_monochrome1_is_still_inverted():
    window = {"center": 2000, "width": 1000}
    mono2 = display_array(grey_dataset(RAMP), **window)
    mono1 = display_array(grey_dataset(RAMP, photometric="MONOCHROME1"), **window)
    assert np.array_equal(mono1, 255 - mono2)
    assert mono2.min() == 0 and mono2.max() == 255


def test_a_requested_window_replaces_the_headers():
    ds = grey_dataset(RAMP, WindowCenter=500, WindowWidth=100)
    assert np.array_equal(
        display_array(ds, center=2000, width=1000), display_array(grey_dataset(RAMP), center=2000, width=1000)
    )
    assert not np.array_equal(display_array(ds, center=2000, width=1000), display_array(ds))


def test_the_window_is_recorded_with_the_image_view(client, technologist, ct):
    client.force_login(technologist)
    image(client, ct, wc="-600", ww="1500")
    assert image_events(ct).get().detail == {"frame": 0, "window": [-600.0, 1500.0]}


@pytest.mark.parametrize(
    "query",
    [
        {"wc": "40"},
        {"ww": "400"},
        {"wc": "forty", "ww": "400"},
        {"wc": "40", "ww": "0"},
        {"wc": "40", "ww": "-400"},
        {"wc": "nan", "ww": "400"},
        {"wc": "40", "ww": "inf"},
        {"wc": "1e9", "ww": "400"},
        {"wc": "40", "ww": "1e9"},
        {"size": "0"},
        {"size": "5000"},
        {"size": "big"},
    ],
)
def test_nonsense_viewer_parameters_are_a_clear_400(client, technologist, ct, query):
    client.force_login(technologist)

    response = image(client, ct, **query)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert any(name in response.content.decode() for name in query)  # it says what was wrong
    assert not image_events(ct).exists()


# -- thumbnails ------------------------------------------------------------------------------


def test_a_thumbnail_is_smaller_and_keeps_the_aspect_ratio(client, technologist):
    wide = stored(technologist, "wide.dcm", wide_ct())
    client.force_login(technologist)

    full = png_of(image(client, wide))
    thumbnail = png_of(image(client, wide, size=128))

    assert full.shape == (256, 384)
    assert thumbnail.shape == (85, 128)
    assert len(image(client, wide, size=128).content) < len(image(client, wide).content)
    # The same picture, shrunk: compare with the full image shrunk the same way.
    shrunk = np.asarray(Image.fromarray(full).resize((128, 85), Image.Resampling.LANCZOS))
    assert np.abs(thumbnail.astype(int) - shrunk.astype(int)).max() <= 1


def test_a_thumbnail_is_never_enlarged(client, technologist, ct):
    client.force_login(technologist)
    assert png_of(image(client, ct, size=256)).shape == (128, 128)
    assert png_of(image(client, ct, size=64)).shape == (64, 64)


def test_a_png_upload_has_a_thumbnail_too(client, technologist):
    out = io.BytesIO()
    Image.linear_gradient("L").resize((300, 150)).save(out, format="PNG")
    instance = stored(technologist, "cxr.png", out.getvalue(), image_modality="CR")
    client.force_login(technologist)
    assert png_of(image(client, instance, size=100)).shape == (50, 100)


# -- caching ---------------------------------------------------------------------------------


def test_each_window_and_size_has_its_own_etag(client, technologist, ct):
    client.force_login(technologist)
    etags = [
        image(client, ct)["ETag"],
        image(client, ct, wc=-600, ww=1500)["ETag"],
        image(client, ct, wc=40, ww=400)["ETag"],
        image(client, ct, size=128)["ETag"],
        image(client, ct, wc=40, ww=400, size=128)["ETag"],
    ]
    assert len(set(etags)) == len(etags)
    assert all(re.fullmatch(r'"[0-9a-f]{32}-0-.+-r\d+"', etag) for etag in etags)
    # One window, however it is spelled, is one image.
    assert image(client, ct, wc="40.0", ww="400")["ETag"] == etags[2]


def test_a_windowed_image_answers_304_to_its_own_etag_only(client, technologist, ct):
    client.force_login(technologist)
    etag = image(client, ct, wc=-600, ww=1500)["ETag"]

    again = client.get(
        reverse("instance-image", args=[ct.pk]), {"wc": -600, "ww": 1500}, HTTP_IF_NONE_MATCH=etag
    )
    other = client.get(
        reverse("instance-image", args=[ct.pk]), {"wc": 40, "ww": 400}, HTTP_IF_NONE_MATCH=etag
    )

    assert (again.status_code, again.content) == (304, b"")
    assert other.status_code == 200
    assert image_events(ct).count() == 3  # a 304 is a look at the image too


# -- the DICOM header ------------------------------------------------------------------------


def header(client, instance: Instance, *, htmx: bool = True):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.get(reverse("instance-header", args=[instance.pk]), **headers)


def cells(html: str) -> list[list[str]]:
    """The table's rows as the user reads them: the text of each cell."""
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows
    ]


def test_the_header_lists_the_instances_attributes(client, radiologist, ct):
    client.force_login(radiologist)

    response = header(client, ct)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # a partial, for htmx
    rows: dict[str, list[str]] = {}
    for row in cells(html):  # the top level's, not OtherPatientIDsSequence's PatientID
        if len(row) == 5:
            rows.setdefault(row[2], row)
    assert rows["Modality"] == ["(0008,0060)", "Modality", "Modality", "CS", "CT"]
    assert rows["PatientID"][4] == "1CT1"
    assert rows["PatientName"][4] == "CompressedSamples^CT1"  # PHI, for a role that may view studies
    assert rows["TransferSyntaxUID"][0] == "(0002,0010)"
    assert rows["RescaleIntercept"][4] == "-1024"


def test_the_header_leaves_out_private_tags_and_pixel_data(client, radiologist, ct):
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    private = [element for element in ds if element.tag.is_private]
    assert private  # CT_small carries GE's private groups
    client.force_login(radiologist)

    html = header(client, ct).content.decode()

    tags = {row[0] for row in cells(html) if row}
    for element in private:
        assert f"({element.tag.group:04X},{element.tag.element:04X})" not in tags
    assert "GEMS_" not in html  # nor the private creators' names
    assert "(7FE0,0010)" not in tags
    assert "Pixel Data" not in html


def test_long_values_are_cut_short_and_sequences_nest(client, radiologist):
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.ImageComments = "word " * 400
    item = pydicom.Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "T-D1100", "SRT", "Head"
    ds.AnatomicRegionSequence = [item]
    instance = stored(radiologist, "long.dcm", saved(ds))
    client.force_login(radiologist)

    rows = cells(header(client, instance).content.decode())

    comments = next(row for row in rows if len(row) == 5 and row[2] == "ImageComments")
    assert comments[4].endswith("…") and len(comments[4]) <= 160
    at = next(i for i, row in enumerate(rows) if len(row) == 5 and row[2] == "AnatomicRegionSequence")
    assert rows[at][3:] == ["SQ", "1 item(s)"]
    assert rows[at + 1][1] == "Item 1"
    assert ["(0008,0104)", "Code Meaning", "CodeMeaning", "LO", "Head"] in rows[at + 2 : at + 5]


def test_without_htmx_the_header_is_a_page_of_its_own(client, technologist, ct):
    client.force_login(technologist)

    html = header(client, ct, htmx=False).content.decode()

    assert "<html" in html
    assert "DICOM header" in html
    assert f'href="{reverse("study-detail", args=[ct.series.study_id])}"' in html
    assert "1CT1" in html


def test_viewing_the_header_is_audited_as_instance_access(client, radiologist, ct):
    client.force_login(radiologist)
    header(client, ct, htmx=True)

    event = AuditEvent.objects.get(description="Header viewed")
    assert event.event_type == EventType.INSTANCES_ACCESSED
    assert (event.object_type, event.object_id, event.username) == ("instance", str(ct.pk), "rita")
    assert (event.patient_id, event.study_uid) == ("1CT1", ct.series.study.study_uid)


def test_a_png_upload_has_no_header_to_show(client, technologist):
    out = io.BytesIO()
    Image.new("L", (8, 8)).save(out, format="PNG")
    instance = stored(technologist, "cxr.png", out.getvalue(), image_modality="CR")
    client.force_login(technologist)
    assert "it has no header" in header(client, instance).content.decode()


@pytest.mark.parametrize("persona", ["outsider", "auditor"])
def test_a_user_without_a_viewing_role_gets_no_header(client, request, ct, persona):
    client.force_login(request.getfixturevalue(persona))

    response = header(client, ct)

    assert response.status_code == 403
    assert b"1CT1" not in response.content
    assert not AuditEvent.objects.filter(description="Header viewed").exists()


def test_an_anonymous_visitor_is_sent_to_log_in_for_the_header(client, ct):
    response = header(client, ct, htmx=False)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
