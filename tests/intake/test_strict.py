"""Intake is strict about broken files and takes every object a PACS sends, on every path:
the upload page, a zip on it, the API, STOW-RS (and C-STORE: test_strict_dimse.py).

Each hostile shape is refused with its reason, audited, and leaves nothing stored."""

from __future__ import annotations

import io
import struct
import zipfile

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from medportal.audit.models import AuditEvent, EventType, Outcome
from medportal.imaging.dicom_scan import MAX_SEQUENCE_DEPTH
from medportal.imaging.ingest import IncomingFile, study_ingest
from medportal.imaging.models import Instance, Patient, Series, Study
from medportal.reporting.models import Report, ReportStatus
from tests.conftest import dicom_bytes, token_header
from tests.dicomweb_server import multipart_body

CT_SOP = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"


def part10(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def ct() -> Dataset:
    return pydicom.dcmread(io.BytesIO(dicom_bytes("CT_small.dcm")))


def element_at(data: bytes, tag: bytes) -> int:
    return data.index(tag, 132)


def absurd_length() -> bytes:
    data = bytearray(dicom_bytes("CT_small.dcm"))
    at = element_at(data, b"\x10\x00\x10\x00PN")  # PatientName, explicit VR: a 2-byte length
    data[at : at + 8] = b"\x10\x00\x10\x00UT\x00\x00"  # now a long VR ...
    data[at + 8 : at + 8] = struct.pack("<I", 0xFFFFFFF0)  # ... of 0xFFFFFFF0 bytes
    return bytes(data)


def length_past_the_end() -> bytes:
    data = bytearray(dicom_bytes("CT_small.dcm"))
    at = element_at(data, b"\x08\x00\x30\x10LO")  # StudyDescription
    data[at + 6 : at + 8] = struct.pack("<H", 0xFFFE)
    return bytes(data[: at + 8 + 100])


def nested_too_deep() -> bytes:
    ds = ct()
    inner = Dataset()
    inner.CodeValue = "x"
    for _ in range(MAX_SEQUENCE_DEPTH + 1):
        outer = Dataset()
        outer.ReferencedSeriesSequence = [inner]
        inner = outer
    ds.ReferencedStudySequence = [inner]
    return part10(ds)


def bits_allocated_8_for_16_bit_pixels() -> bytes:
    ds = ct()
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    return part10(ds)


def three_samples_for_grey_pixels() -> bytes:
    ds = ct()
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    return part10(ds)


def pixels_cut_short() -> bytes:
    return dicom_bytes("CT_small.dcm")[:-1000]


def unknown_vr() -> bytes:
    data = bytearray(dicom_bytes("CT_small.dcm"))
    at = element_at(data, b"\x08\x00\x30\x10LO")
    data[at + 4 : at + 6] = b"ZZ"
    return bytes(data)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (16, 16)).save(out, format="PNG")
    return out.getvalue()


HOSTILE = [
    pytest.param(
        absurd_length, "DICOM file is broken: element (0010,0010) says it is 4,294,967,280 bytes", id="absurd"
    ),
    pytest.param(
        length_past_the_end,
        "DICOM file is broken: element (0008,1030) says it is 65,534 bytes",
        id="past-end",
    ),
    pytest.param(
        nested_too_deep,
        f"DICOM file is broken: sequences are nested more than {MAX_SEQUENCE_DEPTH}",
        id="deep",
    ),
    pytest.param(bits_allocated_8_for_16_bit_pixels, "DICOM pixel data is 32,768 bytes, but Rows", id="bits"),
    pytest.param(
        three_samples_for_grey_pixels, "DICOM pixel data is cut short (32,768 of 98,304 bytes)", id="samples"
    ),
    pytest.param(pixels_cut_short, "DICOM file is broken: the pixel data is cut short (", id="cut"),
    pytest.param(
        unknown_vr, "DICOM file is broken: element (0008,1030) has an unknown VR 'ZZ'", id="unknown-vr"
    ),
]


def assert_nothing_stored() -> None:
    assert (
        Patient.objects.count(),
        Study.objects.count(),
        Series.objects.count(),
        Instance.objects.count(),
    ) == (
        0,
        0,
        0,
        0,
    )


def refusal_reasons() -> list[str]:
    events = AuditEvent.objects.filter(event_type=EventType.IMPORT, outcome=Outcome.MINOR_FAILURE)
    return [event.detail["reason"] for event in events]


def zipped(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, data)
    return out.getvalue()


def send(client, technologist, path: str, data: bytes):
    """A file through one path; the reason the answer gives."""
    if path == "stow":
        body, content_type = multipart_body([data])
        response = client.generic(
            "POST", reverse("dicomweb-studies"), body, content_type=content_type, **token_header(technologist)
        )
        assert response.status_code == 409
        [failed] = response.json()["00081198"]["Value"]
        return failed["00000902"]["Value"][0]
    if path == "api":
        upload = SimpleUploadedFile("hostile.dcm", data)
        response = client.post(reverse("api-studies"), {"files": [upload]}, **token_header(technologist))
        assert response.status_code == 400
        [rejected] = response.json()["rejected"]
        return rejected["reason"]
    client.force_login(technologist)
    name, content = ("hostile.zip", zipped("hostile.dcm", data)) if path == "zip" else ("hostile.dcm", data)
    response = client.post(reverse("upload"), {"files": [SimpleUploadedFile(name, content)]})
    assert response.status_code == 400
    [rejection] = response.context["result"].rejected
    return rejection.reason


@pytest.mark.parametrize("path", ["upload", "zip", "api", "stow"])
@pytest.mark.parametrize(("make", "reason"), HOSTILE)
def test_a_structurally_broken_file_is_refused_with_its_reason_on_every_path(
    client, technologist, image_store, path, make, reason
):
    answered = send(client, technologist, path, make())

    assert answered.startswith(reason[:64])
    [audited] = refusal_reasons()
    assert audited.startswith(reason)
    assert_nothing_stored()
    assert not image_store.exists() or not any(p.is_file() for p in image_store.rglob("*"))


@pytest.mark.parametrize("path", ["upload", "zip", "api"])
def test_a_png_renamed_dcm_is_refused_as_not_dicom(client, technologist, image_store, path):
    reason = send(client, technologist, path, png())
    assert reason == "not DICOM: it is a PNG image named like a DICOM file"
    assert_nothing_stored()


# -- same UID, other content ---------------------------------------------------------------------


def edited_ct() -> bytes:
    ds = ct()
    ds.PatientName = "Someone^Else"
    return part10(ds)


def test_same_uid_other_content_is_refused_over_stow_with_409_and_0x0111(client, technologist, image_store):
    def stow(data: bytes):
        body, content_type = multipart_body([data])
        return client.generic(
            "POST", reverse("dicomweb-studies"), body, content_type=content_type, **token_header(technologist)
        )

    assert stow(dicom_bytes("CT_small.dcm")).status_code == 200
    again = stow(dicom_bytes("CT_small.dcm"))  # the same bytes: idempotent
    conflict = stow(edited_ct())

    assert again.status_code == 200
    assert conflict.status_code == 409
    [failed] = conflict.json()["00081198"]["Value"]
    assert failed["00081197"]["Value"] == [0x0111]
    assert failed["00000902"]["Value"][0].startswith(f"conflict: SOP Instance UID {CT_SOP}"[:64])
    assert Instance.objects.count() == 1
    assert Patient.objects.get().name == "CompressedSamples CT1"  # the stored instance was kept
    event = AuditEvent.objects.get(description="Conflicting instance refused")
    assert (event.outcome, event.detail["source"]) == (Outcome.MINOR_FAILURE, "dicomweb")


def test_the_same_instance_in_another_transfer_syntax_is_no_conflict(technologist, image_store):
    study_ingest(files=[IncomingFile("mr.dcm", dicom_bytes("MR_small.dcm"))], uploader=technologist)
    again, _ = study_ingest(
        files=[IncomingFile("rle.dcm", dicom_bytes("MR_small_RLE.dcm"))], uploader=technologist
    )
    assert (again.stored, again.duplicates, again.rejected) == (0, 1, [])


# -- every object a PACS sends -------------------------------------------------------------------

OBJECTS = [
    ("test-SR.dcm", "SR", "Comprehensive SR Storage"),
    ("rtplan.dcm", "RTPLAN", "RT Plan Storage"),
    ("waveform_ecg.dcm", "ECG", "12-lead ECG Waveform Storage"),
]


@pytest.mark.parametrize(("name", "modality", "sop_class"), OBJECTS)
def test_an_object_that_is_not_an_image_is_stored_listed_and_not_drafted(
    client, radiologist, technologist, image_store, settings, name, modality, sop_class
):
    settings.MEDPORTAL_AUTO_DRAFT = True
    response = client.post(
        reverse("api-studies"),
        {"files": [SimpleUploadedFile(name, dicom_bytes(name))]},
        **token_header(technologist),
    )

    assert response.status_code == 201, response.content
    instance = Instance.objects.get()
    assert (instance.is_image, instance.sop_class_name, instance.series.modality) == (
        False,
        sop_class,
        modality,
    )
    assert Report.objects.get().status == ReportStatus.RECEIVED  # nothing to draft from
    client.force_login(radiologist)
    page = client.get(reverse("study-detail", args=[instance.series.study_id])).content.decode()
    assert "No images." in page
    assert 'id="other-objects"' in page and sop_class in page
    header = client.get(reverse("instance-header", args=[instance.pk]))
    assert header.status_code == 200
    assert client.get(reverse("instance-image", args=[instance.pk])).status_code == 404


def test_a_study_begun_by_a_dose_report_is_drafted_when_its_first_image_arrives(
    client, technologist, image_store, settings
):
    settings.MEDPORTAL_AUTO_DRAFT = True
    image = ct()
    report = pydicom.dcmread(io.BytesIO(dicom_bytes("test-SR.dcm")))
    report.StudyInstanceUID, report.PatientID = image.StudyInstanceUID, image.PatientID
    report.SOPInstanceUID = report.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    headers = token_header(technologist)

    client.post(reverse("api-studies"), {"files": [SimpleUploadedFile("sr.dcm", part10(report))]}, **headers)
    study = Study.objects.get()
    assert (study.modality, Report.objects.get().status) == ("SR", ReportStatus.RECEIVED)
    client.post(reverse("api-studies"), {"files": [SimpleUploadedFile("ct.dcm", part10(image))]}, **headers)

    study.refresh_from_db()
    assert study.modality == "CT"
    assert Report.objects.get().status == ReportStatus.QUEUED


def test_12_bit_jpeg_extended_is_stored_and_renders(client, radiologist, technologist, image_store):
    response = client.post(
        reverse("api-studies"),
        {"files": [SimpleUploadedFile("jpeg12.dcm", dicom_bytes("JPGExtended.dcm"))]},
        **token_header(technologist),
    )
    assert response.status_code == 201, response.content
    client.force_login(radiologist)
    image = client.get(reverse("instance-image", args=[Instance.objects.get().pk]))
    assert image.status_code == 200
    assert Image.open(io.BytesIO(image.content)).size == (256, 1024)


@pytest.mark.parametrize("make", [absurd_length, pixels_cut_short, unknown_vr])
def test_pages_of_a_file_stored_before_ingest_was_strict_never_answer_500(
    client, radiologist, technologist, image_store, make
):
    study_ingest(files=[IncomingFile("ct.dcm", dicom_bytes("CT_small.dcm"))], uploader=technologist)
    instance = Instance.objects.get()
    (image_store / instance.storage_name).write_bytes(make())  # as older versions stored them
    client.force_login(radiologist)

    header = client.get(reverse("instance-header", args=[instance.pk]))
    study = client.get(reverse("study-detail", args=[instance.series.study_id]))
    image = client.get(reverse("instance-image", args=[instance.pk]))

    assert header.status_code == 200
    assert study.status_code == 200
    assert image.status_code in (200, 422)
    if image.status_code == 422:
        assert image.content.decode().startswith("This image cannot be shown: ")
    page = header.content.decode()
    assert "CompressedSamples^CT1" in page or "(cannot be read)" in page
