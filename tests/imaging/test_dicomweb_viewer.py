"""What a DICOMweb viewer (OHIF) needs from MedPortal, through the dicomweb-client package and raw
HTTP against a real server: WADO-RS frames and pixel data, Pixel Data by BulkDataURI in the
metadata, thumbnails, QIDO includefield as OHIF sends it; then reads with a login session and
the audit trail's viewing sessions (through Django's test client, with the real Redis)."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import numpy as np
import pydicom
import pytest
import requests
from django.test import Client
from django.urls import reverse
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.uid import RLELossless, generate_uid

from medportal.audit.models import AuditEvent, EventType
from medportal.imaging.dicomweb_metadata import METADATA_VERSION
from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Instance, InstanceMetadata
from medportal.intake.receive import studies_receive
from tests.conftest import dicom_path, token_header
from tests.dicomweb_server import multipart_parts

OCTET_ANY = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def encoded(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def ct_slices(count: int, *, study: str, series_number: int = 1) -> list[Dataset]:
    """CT_small as ``count`` slices of one series, each a little brighter than the one before."""
    series = generate_uid()
    slices = []
    for index in range(count):
        ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SeriesNumber = study, series, series_number
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = index + 1
        ds.ImagePositionPatient = [0, 0, 5 * index]
        ds.WindowCenter, ds.WindowWidth = 1000, 2000  # a fixed window, so brighter slices look brighter
        pixels = ds.pixel_array.astype(np.int32) + 40 * index
        ds.PixelData = np.clip(pixels, -32768, 32767).astype(np.int16).tobytes()
        slices.append(ds)
    return slices


def rle_multiframe(frames: int = 3) -> tuple[Dataset, np.ndarray]:
    """MR_small as a multi-frame RLE Lossless instance, and its frames' pixels."""
    ds = pydicom.dcmread(dicom_path("MR_small.dcm"))
    stack = np.stack([ds.pixel_array + 100 * i for i in range(frames)]).astype(ds.pixel_array.dtype)
    ds.NumberOfFrames = frames
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.compress(RLELossless, stack)
    return ds, stack


@pytest.fixture
def stored(dicomweb_server, transactional_db, technologist) -> dict:
    """Over STOW-RS: a CT study of two series (5 and 2 slices) and a 3-frame RLE MR."""
    study = generate_uid()
    first, second = ct_slices(5, study=study), ct_slices(2, study=study, series_number=2)
    mr, mr_frames = rle_multiframe()
    dicomweb_server.client(technologist).store_instances([*first, *second, mr])
    return {"study": study, "first": first, "second": second, "mr": mr, "mr_frames": mr_frames}


@pytest.fixture
def dicomweb(dicomweb_server, radiologist):
    return dicomweb_server.client(radiologist)


def uids_of(ds: Dataset) -> tuple[str, str, str]:
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


# -- WADO-RS frames and pixel data ---------------------------------------------------------------


def test_an_uncompressed_frame_comes_back_as_its_pixel_bytes(dicomweb, stored, dicomweb_server, radiologist):
    ct = stored["first"][2]
    [frame] = dicomweb.retrieve_instance_frames(*uids_of(ct), [1], media_types=("application/octet-stream",))
    assert frame == ct.PixelData

    # As OHIF asks for it (any transfer syntax): the same bytes, and the part says which syntax.
    response = dicomweb_server.session(radiologist).get(
        dicomweb_server.url("studies/{}/series/{}/instances/{}/frames/1".format(*uids_of(ct))),
        headers={"Accept": OCTET_ANY},
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith('multipart/related; type="application/octet-stream"')
    assert response.headers["Cache-Control"] == "private, no-cache"
    [(content_type, data)] = multipart_parts(response)
    assert content_type == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    assert data == ct.PixelData


def test_uncompressed_frames_are_read_from_where_the_file_keeps_them(
    dicomweb_server, transactional_db, technologist, radiologist
):
    """Explicit and implicit VR little endian, one frame and several: the frame a seek away."""
    explicit = ct_slices(1, study=generate_uid())[0]
    implicit = ct_slices(1, study=generate_uid())[0]
    implicit.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2"
    stack, _ = rle_multiframe(4)
    stack.decompress()  # four frames, Explicit VR Little Endian
    client = dicomweb_server.client(technologist)
    client.store_instances([explicit, implicit, stack])
    reader = dicomweb_server.client(radiologist)

    for ds in (explicit, implicit):
        assert reader.retrieve_instance_frames(*uids_of(ds), [1]) == [ds.PixelData]
    size = len(stack.PixelData) // 4
    frames = reader.retrieve_instance_frames(
        *uids_of(stack), [4, 2], media_types=("application/octet-stream",)
    )
    assert frames == [stack.PixelData[3 * size :], stack.PixelData[size : 2 * size]]
    rows = InstanceMetadata.objects.filter(
        instance__sop_instance_uid__in=[explicit.SOPInstanceUID, stack.SOPInstanceUID]
    )
    assert all(row.pixel_offset and row.frame_bytes for row in rows)
    assert {row.frame_bytes for row in rows} == {128 * 128 * 2, 64 * 64 * 2}


def test_compressed_frames_come_as_stored_or_decoded_as_the_client_accepts(dicomweb, stored):
    mr, pixels = stored["mr"], stored["mr_frames"]
    as_stored = dicomweb.retrieve_instance_frames(
        *uids_of(mr), [1, 3], media_types=(("application/octet-stream", "*"),)
    )
    assert as_stored == [
        get_frame(mr.PixelData, 0, number_of_frames=3),
        get_frame(mr.PixelData, 2, number_of_frames=3),
    ]
    rle = dicomweb.retrieve_instance_frames(
        *uids_of(mr), [2], media_types=(("image/dicom-rle", RLELossless),)
    )
    assert rle == [get_frame(mr.PixelData, 1, number_of_frames=3)]

    # Uncompressed (the default for application/octet-stream): decoded here, little endian.
    decoded = dicomweb.retrieve_instance_frames(
        *uids_of(mr), [2, 3], media_types=("application/octet-stream",)
    )
    for data, expected in zip(decoded, pixels[1:], strict=True):
        assert np.array_equal(np.frombuffer(data, dtype="<i2").reshape(expected.shape), expected)


def test_pixel_data_is_every_frame_a_part(dicomweb_server, stored, radiologist):
    mr = stored["mr"]
    response = dicomweb_server.session(radiologist).get(
        dicomweb_server.url("studies/{}/series/{}/instances/{}/pixeldata".format(*uids_of(mr))),
        headers={"Accept": OCTET_ANY},
    )
    parts = multipart_parts(response)
    assert [t for t, _ in parts] == [f"application/octet-stream; transfer-syntax={RLELossless}"] * 3
    assert [d for _, d in parts] == [get_frame(mr.PixelData, i, number_of_frames=3) for i in range(3)]


@pytest.mark.parametrize(
    ("frames", "accept", "status", "error"),
    [
        ("4", OCTET_ANY, 404, "The instance has 3 frame(s); there is no frame 4."),
        (
            "0",
            OCTET_ANY,
            400,
            "'0' is not a frame number or a comma-separated list of frame numbers (from 1)",
        ),
        (
            "1,x",
            OCTET_ANY,
            400,
            "'1,x' is not a frame number or a comma-separated list of frame numbers (from 1)",
        ),
        (
            "1",
            'multipart/related; type="image/jpeg"',
            406,
            "the frames are stored in transfer syntax 1.2.840.10008.1.2.5; they can be sent as stored "
            '(transfer-syntax=* or type=image/dicom-rle) or uncompressed (type="application/octet-stream", '
            "Explicit VR Little Endian)",
        ),
    ],
)
def test_a_frame_request_that_cannot_be_answered_says_why(
    dicomweb_server, stored, radiologist, frames, accept, status, error
):
    response = dicomweb_server.session(radiologist).get(
        dicomweb_server.url(
            "studies/{}/series/{}/instances/{}/frames/{}".format(*uids_of(stored["mr"]), frames)
        ),
        headers={"Accept": accept},
    )
    assert (response.status_code, response.json()) == (status, {"error": error})


# -- metadata: Pixel Data by reference, made once --------------------------------------------------


def test_metadata_refers_to_pixel_data_by_a_bulkdata_uri_the_client_can_follow(
    dicomweb, stored, dicomweb_server
):
    study, series, sop = uids_of(stored["first"][0])
    [one] = [m for m in dicomweb.retrieve_series_metadata(study, series) if m["00080018"]["Value"] == [sop]]

    uri = urlsplit(one["7FE00010"]["BulkDataURI"])
    assert one["7FE00010"]["vr"] == "OW"
    # Absolute, on the Host the client named (dicomweb-client sends its host without the port).
    assert uri.path == f"/dicomweb/studies/{study}/series/{series}/instances/{sop}/pixeldata"
    assert "InlineBinary" not in one["7FE00010"]
    [pixels] = dicomweb.retrieve_bulkdata(dicomweb_server.base_url + uri.path)
    assert pixels == stored["first"][0].PixelData
    ds = Dataset.from_json({tag: value for tag, value in one.items() if tag != "7FE00010"})
    assert ds.PatientID == stored["first"][0].PatientID


def test_series_metadata_is_made_once_and_lists_the_slices_in_order(dicomweb, stored, transactional_db):
    study, series, _ = uids_of(stored["first"][0])
    first = dicomweb.retrieve_series_metadata(study, series)
    rows = InstanceMetadata.objects.filter(instance__series__series_uid=series)
    assert rows.count() == 5
    made = {row.pk: row.dicom_json for row in rows}
    again = dicomweb.retrieve_series_metadata(study, series)

    assert first == again
    assert [m["00200013"]["Value"] for m in again] == [[1], [2], [3], [4], [5]]
    assert {row.pk: row.dicom_json for row in rows.all()} == made  # read, not made again


def test_a_stale_conversion_is_made_again(dicomweb, stored, transactional_db):
    study, series, sop = uids_of(stored["second"][0])
    dicomweb.retrieve_instance_metadata(study, series, sop)
    InstanceMetadata.objects.filter(instance__sop_instance_uid=sop).update(version=0, dicom_json="{}")

    metadata = dicomweb.retrieve_instance_metadata(study, series, sop)

    assert metadata["00080018"]["Value"] == [sop]
    assert InstanceMetadata.objects.get(instance__sop_instance_uid=sop).version == METADATA_VERSION


# -- thumbnails and QIDO as OHIF asks ---------------------------------------------------------------


@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_thumbnails_of_a_study_a_series_and_an_instance(dicomweb_server, stored, radiologist, level):
    study, series, _ = uids_of(stored["first"][0])
    middle = stored["first"][2]  # the middle slice of the first series stands for the study and the series
    path = {
        "study": f"studies/{study}",
        "series": f"studies/{study}/series/{series}",
        "instance": "studies/{}/series/{}/instances/{}".format(*uids_of(middle)),
    }[level]
    session = dicomweb_server.session(radiologist)

    jpeg = session.get(dicomweb_server.url(f"{path}/thumbnail"), params={"accept": "image/jpeg"})
    png = session.get(dicomweb_server.url(f"{path}/thumbnail"), params={"viewport": "64,64"})

    assert jpeg.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).size == (128, 128)
    assert png.headers["Content-Type"] == "image/png"
    small = np.asarray(Image.open(io.BytesIO(png.content)))
    assert small.shape == (64, 64)
    assert jpeg.headers["Cache-Control"] == "private, no-cache"
    # It is the middle slice: brighter than the first slice's thumbnail.
    first = session.get(
        dicomweb_server.url(
            "studies/{}/series/{}/instances/{}/thumbnail".format(*uids_of(stored["first"][0]))
        ),
        params={"viewport": "64,64"},
    )
    assert small.mean() > np.asarray(Image.open(io.BytesIO(first.content))).mean()


def test_a_bad_thumbnail_viewport_is_a_400(dicomweb_server, stored, radiologist):
    response = dicomweb_server.session(radiologist).get(
        dicomweb_server.url(f"studies/{stored['study']}/thumbnail"), params={"viewport": "big"}
    )
    assert (response.status_code, response.json()) == (
        400,
        {"error": "viewport must be width,height in pixels, not 'big'"},
    )


def test_includefield_as_ohif_sends_it(dicomweb_server, stored, radiologist):
    response = dicomweb_server.session(radiologist).get(
        dicomweb_server.url("studies"),
        params={"StudyInstanceUID": stored["study"], "includefield": "00081030,00080060,00080090,00100030"},
    )
    [study] = [Dataset.from_json(r) for r in response.json()]
    assert study.ModalitiesInStudy == "CT"
    assert "StudyDescription" in study and "PatientBirthDate" in study
    assert study.NumberOfStudyRelatedInstances == 7
    series = dicomweb_server.session(radiologist).get(
        dicomweb_server.url(f"studies/{stored['study']}/series"),
        params={"includefield": "00080021,00080031,0008103E,00200011"},
    )
    assert [Dataset.from_json(s).SeriesNumber for s in series.json()] == [1, 2]
    assert all("00080021" in s and "00080031" in s for s in series.json())


# -- reads with the login session (the viewer's), beside tokens -----------------------------------


@pytest.fixture
def ct_study(db, technologist, settings) -> dict:
    settings.MEDPORTAL_AUTO_DRAFT = False
    study = generate_uid()
    first, second = ct_slices(3, study=study), ct_slices(2, study=study, series_number=2)
    studies_receive(
        files=[IncomingFile(f"{i}.dcm", encoded(ds)) for i, ds in enumerate([*first, *second])],
        uploader=technologist,
        auto_draft=False,
    )
    return {"study": study, "first": first, "second": second}


def frames_url(ds: Dataset, frames: str = "1") -> str:
    return reverse("dicomweb-frames", args=[*uids_of(ds), frames])


def metadata_url(ds: Dataset) -> str:
    return reverse("dicomweb-series-metadata", args=[ds.StudyInstanceUID, ds.SeriesInstanceUID])


SAME_ORIGIN = {"HTTP_SEC_FETCH_SITE": "same-origin"}


def test_a_logged_in_user_reads_dicomweb_from_medportals_own_pages(client, radiologist, ct_study):
    client.force_login(radiologist)
    ds = ct_study["first"][0]
    assert client.get(metadata_url(ds), **SAME_ORIGIN).status_code == 200
    assert client.get(frames_url(ds), HTTP_ACCEPT=OCTET_ANY, **SAME_ORIGIN).status_code == 200
    # A browser that sends no Sec-Fetch-Site, and the address bar, are same-origin too.
    assert client.get(reverse("dicomweb-studies")).status_code == 200
    assert client.get(reverse("dicomweb-studies"), HTTP_SEC_FETCH_SITE="none").status_code == 200
    assert client.head(metadata_url(ds), **SAME_ORIGIN).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_SEC_FETCH_SITE": "cross-site"},
        {"HTTP_SEC_FETCH_SITE": "same-site"},
        {"HTTP_ORIGIN": "https://elsewhere.example"},
    ],
)
def test_another_site_cannot_read_with_the_users_session(client, radiologist, ct_study, headers):
    client.force_login(radiologist)
    response = client.get(metadata_url(ct_study["first"][0]), **headers)
    assert (response.status_code, response.json()) == (
        403,
        {"error": "A login session reads DICOMweb only from MedPortal's own pages."},
    )
    assert not AuditEvent.objects.filter(event_type=EventType.INSTANCES_ACCESSED).exists()


def test_stow_rs_still_needs_a_token(client, radiologist, ct_study):
    client.force_login(radiologist)
    response = client.post(
        reverse("dicomweb-studies"),
        data=b"",
        content_type="multipart/related; type=application/dicom",
        **SAME_ORIGIN,
    )
    assert response.status_code == 401


def test_a_session_without_a_viewing_role_reads_nothing(client, auditor, ct_study):
    client.force_login(auditor)
    response = client.get(metadata_url(ct_study["first"][0]), **SAME_ORIGIN)
    assert response.status_code == 403


def test_anonymous_reads_nothing(client, ct_study):
    response = client.get(metadata_url(ct_study["first"][0]), **SAME_ORIGIN)
    assert response.status_code == 401


# -- the audit trail: one event per user, study and viewing session --------------------------------


def looks() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=EventType.INSTANCES_ACCESSED).order_by("id"))


def test_a_viewing_session_is_one_event_however_many_requests(client, radiologist, ct_study):
    client.force_login(radiologist)
    first, second = ct_study["first"], ct_study["second"]
    client.get(metadata_url(first[0]), **SAME_ORIGIN)
    for ds in first:
        client.get(frames_url(ds), HTTP_ACCEPT=OCTET_ANY, **SAME_ORIGIN)
    client.get(reverse("dicomweb-series-thumbnail", args=[ct_study["study"], first[0].SeriesInstanceUID]))
    client.get(metadata_url(first[0]), **SAME_ORIGIN)

    [event] = looks()
    assert (event.event_type, event.user, event.study_uid, event.patient_id) == (
        "110103",
        radiologist,
        ct_study["study"],
        first[0].PatientID,
    )
    assert event.description == "Images viewed"
    assert event.detail["series"] == [first[0].SeriesInstanceUID]
    assert event.detail["resource"] == "metadata read"
    assert event.detail["channel"] == "session"
    viewing = event.detail["viewing_session"]

    # Another series of the same study, in the same viewing session: one more event, for it alone.
    client.get(metadata_url(second[0]), **SAME_ORIGIN)
    client.get(frames_url(second[1]), HTTP_ACCEPT=OCTET_ANY, **SAME_ORIGIN)
    assert [(e.description, e.detail["series"], e.detail["viewing_session"]) for e in looks()[1:]] == [
        ("Images viewed, another series", [second[0].SeriesInstanceUID], viewing)
    ]


def test_another_login_a_token_and_a_download_are_viewing_sessions_of_their_own(
    client, radiologist, ct_study
):
    ds = ct_study["first"][0]
    client.force_login(radiologist)
    client.get(metadata_url(ds), **SAME_ORIGIN)
    other = Client()
    other.force_login(radiologist)
    other.get(frames_url(ds), HTTP_ACCEPT=OCTET_ANY, **SAME_ORIGIN)
    token = token_header(radiologist)
    client.get(metadata_url(ds), **token)
    client.get(frames_url(ds), HTTP_ACCEPT=OCTET_ANY, **token)
    client.get(reverse("dicomweb-series", args=[ds.StudyInstanceUID, ds.SeriesInstanceUID]), **token)
    client.get(reverse("dicomweb-series", args=[ds.StudyInstanceUID, ds.SeriesInstanceUID]), **token)

    events = looks()
    assert [(e.description, e.detail["channel"]) for e in events] == [
        ("Images viewed", "session"),
        ("Images viewed", "session"),
        ("Images viewed", "token"),
        ("DICOM files retrieved (WADO-RS)", "token"),
    ]
    assert len({e.detail["viewing_session"] for e in events}) == 4


def test_opening_the_viewer_on_a_study_records_it_with_all_its_series(client, radiologist, ct_study):
    client.force_login(radiologist)
    study = ct_study["study"]
    page = client.get(reverse("viewer-path", args=["viewer"]), {"StudyInstanceUIDs": study})
    assert page.status_code == 200
    # What the viewer then asks for is covered by that event: its metadata, frames, thumbnails, and
    # the searches within the study. A search for the patient's other studies is audited.
    for ds in [*ct_study["first"], *ct_study["second"]]:
        client.get(metadata_url(ds), **SAME_ORIGIN)
        client.get(frames_url(ds), HTTP_ACCEPT=OCTET_ANY, **SAME_ORIGIN)
    client.get(reverse("dicomweb-studies"), {"StudyInstanceUID": study}, **SAME_ORIGIN)
    client.get(reverse("dicomweb-study-series", args=[study]), **SAME_ORIGIN)
    client.get(reverse("dicomweb-studies"), {"PatientID": ct_study["first"][0].PatientID}, **SAME_ORIGIN)

    [event] = looks()
    assert event.detail["resource"] == "viewer opened"
    assert event.detail["series"] == sorted(
        {ct_study["first"][0].SeriesInstanceUID, ct_study["second"][0].SeriesInstanceUID}
    )
    [search] = AuditEvent.objects.filter(event_type=EventType.QUERY, description__startswith="DICOMweb")
    assert search.detail["query"] == {"PatientID": [ct_study["first"][0].PatientID]}


def test_without_redis_every_request_is_audited(client, radiologist, ct_study, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    client.force_login(radiologist)
    ds = ct_study["first"][0]
    client.get(metadata_url(ds), **SAME_ORIGIN)
    client.get(frames_url(ds), HTTP_ACCEPT=OCTET_ANY, **SAME_ORIGIN)
    assert [e.detail["resource"] for e in looks()] == ["metadata read", "frames read"]


def test_a_look_whose_event_could_not_be_written_is_recorded_by_the_next_request(
    client, radiologist, ct_study, monkeypatch
):
    from medportal.imaging import viewing

    client.force_login(radiologist)
    ds = ct_study["first"][0]
    real = viewing.audit_record

    def failing(**kwargs):
        raise RuntimeError("the audit trail is unavailable")

    monkeypatch.setattr(viewing, "audit_record", failing)
    client.raise_request_exception = False
    assert client.get(metadata_url(ds), **SAME_ORIGIN).status_code == 500
    monkeypatch.setattr(viewing, "audit_record", real)
    assert client.get(metadata_url(ds), **SAME_ORIGIN).status_code == 200
    [event] = looks()
    assert event.detail["series"] == [ds.SeriesInstanceUID]


def test_instances_of_another_study_are_not_reachable_through_a_viewed_one(client, radiologist, ct_study):
    client.force_login(radiologist)
    ds = ct_study["first"][0]
    wrong = reverse("dicomweb-frames", args=[generate_uid(), ds.SeriesInstanceUID, ds.SOPInstanceUID, "1"])
    assert client.get(wrong, **SAME_ORIGIN).status_code == 404
    assert Instance.objects.filter(sop_instance_uid=ds.SOPInstanceUID).exists()


def test_requests_errors_are_json(dicomweb, stored):
    with pytest.raises(requests.HTTPError) as raised:
        dicomweb.retrieve_instance_frames(stored["study"], "1.2.3", "1.2.3.4", [1])
    assert raised.value.response.status_code == 404
