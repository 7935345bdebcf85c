"""QIDO-RS and WADO-RS, as the dicomweb-client package sees them from a real server (daphne).

Studies go in through STOW-RS (its own tests are in tests/intake/test_stow.py);
these tests search for them and read them back.
"""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import numpy as np
import pydicom
import pytest
import requests
from django.urls import reverse
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from medportal.audit.models import Action, AuditEvent, EventType, Outcome
from medportal.imaging.pixels import display_array
from tests.conftest import dicom_path, token_header
from tests.dicomweb_server import encoded, multipart_parts

CT_STUDY = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
CT_SERIES = "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"
CT_SOP = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
MR_STUDY = "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457"
MR_SERIES = "1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457"
MR_SOP = "1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457"


def ct(series: int = 1, number: int = 1) -> Dataset:
    """CT_small as instance ``number`` of series ``series`` of its study, accession ACC-CT-1."""
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    ds.AccessionNumber = "ACC-CT-1"
    if (series, number) != (1, 1):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{CT_SOP}.{series}{number}"
        ds.InstanceNumber = number
    if series != 1:
        ds.SeriesInstanceUID = f"{CT_SERIES}.{series}"
        ds.SeriesNumber = series
    return ds


def mr() -> Dataset:
    return pydicom.dcmread(dicom_path("MR_small.dcm"))


@pytest.fixture
def sent(dicomweb_server, transactional_db, technologist) -> dict[str, Dataset]:
    """Two studies stored over STOW-RS: a CT (two series, three instances) and an MR (one)."""
    datasets = {"ct": ct(), "ct2": ct(1, 2), "ct3": ct(2, 1), "mr": mr()}
    response = dicomweb_server.client(technologist).store_instances(list(datasets.values()))
    assert len(response.ReferencedSOPSequence) == 4
    return datasets


@pytest.fixture
def dicomweb(dicomweb_server, radiologist):
    """The dicomweb-client package's client, as a radiologist."""
    return dicomweb_server.client(radiologist)


def as_datasets(results: list[dict]) -> list[Dataset]:
    return [Dataset.from_json(result) for result in results]


def uids(results: list[dict], keyword: str) -> list[str]:
    return [str(ds.get(keyword)) for ds in as_datasets(results)]


# -- QIDO-RS: studies ---------------------------------------------------------------------------


def test_a_study_search_lists_each_study_with_its_attributes(dicomweb, sent, dicomweb_server, radiologist):
    results = dicomweb.search_for_studies()

    assert uids(results, "StudyInstanceUID") == [CT_STUDY, MR_STUDY]
    study = as_datasets(results)[0]
    assert (study.PatientID, str(study.PatientName), study.PatientSex) == (
        "1CT1",
        "CompressedSamples^CT1",
        "O",
    )
    assert (study.StudyDate, study.StudyTime, study.StudyID) == ("20040119", "072730", "1CT1")
    assert study.AccessionNumber == "ACC-CT-1"
    assert study.ModalitiesInStudy == "CT"
    assert (study.NumberOfStudyRelatedSeries, study.NumberOfStudyRelatedInstances) == (2, 3)
    assert study.RetrieveURL.endswith(f"/dicomweb/studies/{CT_STUDY}")
    # The response is DICOM JSON.
    raw = dicomweb_server.session(radiologist).get(dicomweb_server.url("studies"))
    assert raw.headers["Content-Type"] == "application/dicom+json"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"PatientID": "1CT1"}, [CT_STUDY]),
        ({"PatientID": "4MR*"}, [MR_STUDY]),
        ({"00100020": "4MR1"}, [MR_STUDY]),
        ({"PatientName": "CompressedSamples^MR1"}, [MR_STUDY]),
        ({"PatientName": "compressed*"}, [CT_STUDY, MR_STUDY]),
        ({"PatientName": "*ct?"}, [CT_STUDY]),
        ({"PatientName": "Compressed"}, []),
        ({"StudyInstanceUID": MR_STUDY}, [MR_STUDY]),
        ({"StudyInstanceUID": f"{CT_STUDY},{MR_STUDY}"}, [CT_STUDY, MR_STUDY]),
        ({"AccessionNumber": "ACC-CT-1"}, [CT_STUDY]),
        ({"ModalitiesInStudy": "MR"}, [MR_STUDY]),
        ({"ModalitiesInStudy": "CT,MR"}, [CT_STUDY, MR_STUDY]),
        ({"StudyDate": "20040119"}, [CT_STUDY]),
        ({"StudyDate": "20040201-20041231"}, [MR_STUDY]),
        ({"StudyDate": "-20040131"}, [CT_STUDY]),
        ({"StudyDate": "20050101-"}, []),
        ({"PatientID": "1CT1", "ModalitiesInStudy": "MR"}, []),
    ],
)
def test_studies_are_matched_by_the_common_query_keys(dicomweb, sent, filters, expected):
    assert uids(dicomweb.search_for_studies(search_filters=filters), "StudyInstanceUID") == expected


def test_limit_and_offset_page_through_the_studies(dicomweb, sent, dicomweb_server, radiologist):
    assert uids(dicomweb.search_for_studies(limit=1), "StudyInstanceUID") == [CT_STUDY]
    assert uids(dicomweb.search_for_studies(limit=1, offset=1), "StudyInstanceUID") == [MR_STUDY]
    assert dicomweb.search_for_studies(offset=2) == []
    assert len(dicomweb.search_for_studies(limit=1, get_remaining=True)) == 2
    # A page that leaves results behind says so.
    first = dicomweb_server.session(radiologist).get(dicomweb_server.url("studies"), params={"limit": 1})
    assert (
        first.headers["Warning"]
        == '299 medportal: "There are additional results that can be requested (use offset)"'
    )
    last = dicomweb_server.session(radiologist).get(dicomweb_server.url("studies"), params={"offset": 1})
    assert "Warning" not in last.headers


def test_includefield_adds_attributes_from_the_header(dicomweb, sent):
    [plain] = as_datasets(dicomweb.search_for_studies(search_filters={"PatientID": "1CT1"}))
    [more] = as_datasets(
        dicomweb.search_for_studies(search_filters={"PatientID": "1CT1"}, fields=["Manufacturer", "00180050"])
    )
    assert "Manufacturer" not in plain
    assert (more.Manufacturer, more.SliceThickness) == ("GE MEDICAL SYSTEMS", 5)
    [everything] = as_datasets(
        dicomweb.search_for_studies(search_filters={"PatientID": "1CT1"}, fields=["all"])
    )
    assert everything.KVP == 120
    assert "PixelData" not in everything


def test_an_unsupported_key_is_ignored_and_named_in_a_warning(sent, dicomweb_server, radiologist):
    response = dicomweb_server.session(radiologist).get(
        dicomweb_server.url("studies"), params={"PatientID": "1CT1", "NoSuchKey": "x"}
    )
    assert response.status_code == 200
    assert uids(response.json(), "StudyInstanceUID") == [CT_STUDY]
    assert response.headers["Warning"] == (
        '299 medportal: "The following query keys are not supported and were ignored: NoSuchKey"'
    )


NOT_A_DATE = "is not a date or a range of dates (YYYYMMDD, YYYYMMDD-YYYYMMDD)"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"StudyDate": "2004-01-19"}, f"'2004-01-19' {NOT_A_DATE}"),
        ({"StudyDate": "20041399"}, f"'20041399' {NOT_A_DATE}"),
        ({"StudyDate": "-"}, f"'-' {NOT_A_DATE}"),
        ({"StudyInstanceUID": "1.2.abc"}, "'1.2.abc' is not a list of UIDs"),
        ({"limit": "ten"}, "limit must be a whole number, not 'ten'"),
        ({"offset": "-1"}, "offset must not be negative"),
    ],
)
def test_a_query_value_that_cannot_be_matched_is_a_400(sent, dicomweb_server, radiologist, params, error):
    response = dicomweb_server.session(radiologist).get(dicomweb_server.url("studies"), params=params)
    assert (response.status_code, response.json()) == (400, {"error": error})


def test_a_search_is_audited_with_its_query(dicomweb, sent, radiologist):
    dicomweb.search_for_studies(search_filters={"PatientName": "Compressed*"}, limit=5)

    event = AuditEvent.objects.filter(event_type=EventType.QUERY).get()
    assert event.event_type == "110112"
    assert (event.action, event.outcome, event.user) == (Action.EXECUTE, Outcome.SUCCESS, radiologist)
    assert event.description == "DICOMweb search for study (QIDO-RS)"
    assert event.detail == {
        "service": "QIDO-RS",
        "path": "/dicomweb/studies",
        "query": {"PatientName": ["Compressed*"], "limit": ["5"]},
        "results": 2,
    }


# -- QIDO-RS: series and instances -----------------------------------------------------------------


def test_the_series_of_a_study_are_listed_with_their_instance_counts(dicomweb, sent):
    results = as_datasets(dicomweb.search_for_series(CT_STUDY))

    assert [s.SeriesInstanceUID for s in results] == [CT_SERIES, f"{CT_SERIES}.2"]
    assert [(s.Modality, s.SeriesNumber, s.NumberOfSeriesRelatedInstances) for s in results] == [
        ("CT", 1, 2),
        ("CT", 2, 1),
    ]
    assert results[1].RetrieveURL.endswith(f"/dicomweb/studies/{CT_STUDY}/series/{CT_SERIES}.2")
    # Within a study, the study's attributes are not repeated.
    assert "PatientID" not in results[0]


def test_series_of_all_studies_are_searched_with_study_and_series_keys(dicomweb, sent):
    assert uids(dicomweb.search_for_series(search_filters={"Modality": "MR"}), "SeriesInstanceUID") == [
        MR_SERIES
    ]
    found = as_datasets(dicomweb.search_for_series(search_filters={"PatientID": "1CT1", "SeriesNumber": "2"}))
    assert [s.SeriesInstanceUID for s in found] == [f"{CT_SERIES}.2"]
    assert found[0].PatientID == "1CT1"  # outside a study, its attributes come along


def test_the_instances_of_a_series_a_study_and_all_studies(dicomweb, sent):
    in_series = as_datasets(dicomweb.search_for_instances(CT_STUDY, CT_SERIES))
    assert [(i.SOPInstanceUID, i.InstanceNumber) for i in in_series] == [(CT_SOP, 1), (f"{CT_SOP}.12", 2)]
    assert in_series[0].SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert (in_series[0].Rows, in_series[0].Columns, in_series[0].BitsAllocated) == (128, 128, 16)
    assert in_series[0].RetrieveURL.endswith(f"/studies/{CT_STUDY}/series/{CT_SERIES}/instances/{CT_SOP}")

    assert len(dicomweb.search_for_instances(CT_STUDY)) == 3
    assert uids(dicomweb.search_for_instances(search_filters={"SOPInstanceUID": MR_SOP}), "PatientID") == [
        "4MR1"
    ]
    assert len(dicomweb.search_for_instances(search_filters={"InstanceNumber": "2"})) == 1


def test_a_search_within_an_unknown_study_finds_nothing(dicomweb, sent):
    assert dicomweb.search_for_series("1.2.3.4") == []


# -- WADO-RS: instances, series, studies ---------------------------------------------------------


def test_an_instance_comes_back_as_stored_with_its_preamble_zeroed(
    dicomweb, sent, dicomweb_server, radiologist
):
    response = dicomweb_server.session(radiologist).get(
        dicomweb_server.url(f"studies/{CT_STUDY}/series/{CT_SERIES}/instances/{CT_SOP}"),
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(
        'multipart/related; type="application/dicom"; boundary='
    )
    [(content_type, data)] = multipart_parts(response)
    assert content_type == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    original = encoded(sent["ct"])
    assert any(original[:128])  # CT_small carries a TIFF header in its preamble
    assert data == bytes(128) + original[128:]


def test_the_client_reads_back_the_same_pixels(dicomweb, sent):
    ds = dicomweb.retrieve_instance(CT_STUDY, CT_SERIES, CT_SOP)

    assert ds.preamble == bytes(128)
    assert ds.SOPInstanceUID == CT_SOP
    assert np.array_equal(ds.pixel_array, sent["ct"].pixel_array)


def test_a_study_and_a_series_come_back_whole(dicomweb, sent):
    study = dicomweb.retrieve_study(CT_STUDY)
    assert [ds.SOPInstanceUID for ds in study] == [CT_SOP, f"{CT_SOP}.12", f"{CT_SOP}.21"]
    series = dicomweb.retrieve_series(CT_STUDY, f"{CT_SERIES}.2")
    assert [ds.SOPInstanceUID for ds in series] == [f"{CT_SOP}.21"]
    assert all(np.array_equal(ds.pixel_array, sent["ct"].pixel_array) for ds in study)


def test_a_compressed_instance_is_decompressed_for_a_client_that_asks_for_explicit_little_endian(
    dicomweb_server, transactional_db, technologist
):
    rle = pydicom.dcmread(dicom_path("MR_small_RLE.dcm"))
    dicomweb = dicomweb_server.client(technologist)
    dicomweb.store_instances([rle])

    as_stored = dicomweb.retrieve_instance(MR_STUDY, MR_SERIES, MR_SOP)
    default = dicomweb.retrieve_instance(MR_STUDY, MR_SERIES, MR_SOP, media_types=("application/dicom",))
    explicit = dicomweb.retrieve_instance(
        MR_STUDY, MR_SERIES, MR_SOP, media_types=(("application/dicom", ExplicitVRLittleEndian),)
    )

    assert as_stored.file_meta.TransferSyntaxUID == RLELossless
    assert (
        default.file_meta.TransferSyntaxUID == explicit.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    )
    assert np.array_equal(explicit.pixel_array, rle.pixel_array)
    assert np.array_equal(default.pixel_array, as_stored.pixel_array)


def test_a_transfer_syntax_that_cannot_be_made_is_406(dicomweb, sent):
    with pytest.raises(requests.HTTPError) as raised:
        dicomweb.retrieve_instance(
            CT_STUDY, CT_SERIES, CT_SOP, media_types=(("application/dicom", "1.2.840.10008.1.2.4.50"),)
        )
    assert raised.value.response.status_code == 406
    assert "it can be sent as stored or as Explicit VR Little Endian" in raised.value.response.json()["error"]


def test_an_unknown_instance_is_404(dicomweb, sent):
    with pytest.raises(requests.HTTPError) as raised:
        dicomweb.retrieve_instance(CT_STUDY, CT_SERIES, "1.2.3.4")
    assert raised.value.response.status_code == 404


# -- WADO-RS: metadata and rendered ---------------------------------------------------------------


def test_instance_metadata_is_the_header_with_pixel_data_by_reference(dicomweb, sent):
    raw = dicomweb.retrieve_instance_metadata(CT_STUDY, CT_SERIES, CT_SOP)

    # Absolute, on the Host the client named (dicomweb-client sends its host without the port).
    assert raw["7FE00010"]["vr"] == "OW"
    assert urlsplit(raw["7FE00010"]["BulkDataURI"]).path == (
        f"/dicomweb/studies/{CT_STUDY}/series/{CT_SERIES}/instances/{CT_SOP}/pixeldata"
    )
    metadata = Dataset.from_json({tag: value for tag, value in raw.items() if tag != "7FE00010"})
    header = pydicom.dcmread(dicom_path("CT_small.dcm"), stop_before_pixels=True)
    assert (str(metadata.PatientName), metadata.SOPInstanceUID, metadata.Rows) == (
        "CompressedSamples^CT1",
        CT_SOP,
        128,
    )
    assert metadata.ImagePositionPatient == header.ImagePositionPatient
    assert metadata.AccessionNumber == "ACC-CT-1"


def test_study_and_series_metadata_list_every_instance(dicomweb, sent):
    assert uids(dicomweb.retrieve_study_metadata(CT_STUDY), "SOPInstanceUID") == [
        CT_SOP,
        f"{CT_SOP}.12",
        f"{CT_SOP}.21",
    ]
    assert uids(dicomweb.retrieve_series_metadata(CT_STUDY, CT_SERIES), "InstanceNumber") == ["1", "2"]


def test_a_rendered_instance_is_the_image_the_viewer_shows(dicomweb, sent):
    png = dicomweb.retrieve_instance_rendered(CT_STUDY, CT_SERIES, CT_SOP, media_types=("image/png",))
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (128, 128))
    assert np.array_equal(np.asarray(image), display_array(pydicom.dcmread(dicom_path("CT_small.dcm"))))

    jpeg = dicomweb.retrieve_instance_rendered(CT_STUDY, CT_SERIES, CT_SOP, media_types=("image/jpeg",))
    assert Image.open(io.BytesIO(jpeg)).format == "JPEG"
    frame = dicomweb.retrieve_instance_frames_rendered(
        CT_STUDY, CT_SERIES, CT_SOP, [1], media_types=("image/png",)
    )
    assert frame == png


def test_a_frame_the_instance_does_not_have_is_404(dicomweb, sent):
    with pytest.raises(requests.HTTPError) as raised:
        dicomweb.retrieve_instance_frames_rendered(
            CT_STUDY, CT_SERIES, CT_SOP, [2], media_types=("image/png",)
        )
    assert raised.value.response.status_code == 404


def test_retrievals_are_audited_as_instances_accessed_once_per_viewing_session(dicomweb, sent, radiologist):
    dicomweb.retrieve_instance(CT_STUDY, CT_SERIES, CT_SOP)
    dicomweb.retrieve_series_metadata(CT_STUDY, CT_SERIES)
    dicomweb.retrieve_instance_rendered(CT_STUDY, CT_SERIES, CT_SOP, media_types=("image/png",))
    dicomweb.retrieve_instance_frames_rendered(CT_STUDY, CT_SERIES, CT_SOP, [1], media_types=("image/png",))

    # Downloading the files and looking at the images are a viewing session each (this client's
    # token ties its requests together); tests/imaging/test_dicomweb_viewer.py has the rest.
    events = AuditEvent.objects.filter(event_type=EventType.INSTANCES_ACCESSED).order_by("id")
    assert [e.description for e in events] == ["DICOM files retrieved (WADO-RS)", "Images viewed"]
    for event in events:
        assert event.event_type == "110103"
        assert (event.action, event.user, event.patient_id, event.study_uid) == (
            Action.READ,
            radiologist,
            "1CT1",
            CT_STUDY,
        )
        assert event.accession_number == "ACC-CT-1"
        assert event.detail["series"] == [CT_SERIES]
    assert events[0].detail["sop_instance_uids"] == [CT_SOP]
    assert events[1].detail["sop_instance_uids"] == [CT_SOP, f"{CT_SOP}.12"]
    assert events[1].detail["resource"] == "metadata read"


# -- who may search and read (through the Django test client) -------------------------------------

READ_URLS = [
    reverse("dicomweb-studies"),
    reverse("dicomweb-all-series"),
    reverse("dicomweb-study-metadata", args=[CT_STUDY]),
    reverse("dicomweb-instance", args=[CT_STUDY, CT_SERIES, CT_SOP]),
    reverse("dicomweb-instance-rendered", args=[CT_STUDY, CT_SERIES, CT_SOP]),
]


@pytest.mark.parametrize("url", READ_URLS)
def test_without_a_token_nothing_is_read(client, url):
    response = client.get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("url", READ_URLS)
@pytest.mark.parametrize("persona", ["auditor", "outsider"])
def test_a_role_that_may_not_view_studies_reads_nothing(client, request, url, persona):
    response = client.get(url, **token_header(request.getfixturevalue(persona)))
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(
        event_type__in=[EventType.QUERY, EventType.INSTANCES_ACCESSED]
    ).exists()


def test_a_technologist_may_search(client, technologist):
    response = client.get(reverse("dicomweb-studies"), **token_header(technologist))
    assert (response.status_code, response.json()) == (200, [])
