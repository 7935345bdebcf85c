"""Ingest: DICOM, PNG and JPEG in; rows from the header; blobs by hash; bad files refused and audited."""

import datetime
import hashlib
import io
from pathlib import Path

import pydicom
import pytest
from PIL import Image

from medportal.audit.models import Action, AuditEvent, EventType, Outcome
from medportal.imaging.ingest import IncomingFile, IngestError, study_ingest
from medportal.imaging.models import Instance, Patient, Series, Study, storage_name_for
from medportal.intake.receive import studies_receive
from medportal.reporting.models import ReportStatus
from tests.conftest import dicom_bytes, dicom_path

pytestmark = pytest.mark.usefixtures("image_store")


def stored_blobs(store: Path) -> list[Path]:
    return [path for path in store.rglob("*") if path.is_file()] if store.exists() else []


def ingest(user, *files: tuple[str, bytes], **kwargs):
    return study_ingest(files=[IncomingFile(name, data) for name, data in files], uploader=user, **kwargs)


def picture(fmt: str, size=(40, 30), mode="L") -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert(mode).save(out, format=fmt)
    return out.getvalue()


def assert_nothing_stored(store: Path) -> None:
    assert (Patient.objects.count(), Study.objects.count(), Series.objects.count()) == (0, 0, 0)
    assert Instance.objects.count() == 0
    assert stored_blobs(store) == []


# -- DICOM accepted ----------------------------------------------------------------------------

DICOM_SAMPLES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "JPEG2000.dcm",
    "693_J2KI.dcm",
]


@pytest.mark.parametrize("name", DICOM_SAMPLES)
def test_a_dicom_file_is_stored_with_rows_from_its_header(technologist, image_store, name):
    header = pydicom.dcmread(dicom_path(name), stop_before_pixels=True)

    result, created = ingest(technologist, (name, dicom_bytes(name)))

    assert (result.stored, result.duplicates, result.rejected) == (1, 0, [])
    study = Study.objects.get()
    assert created == result.studies == [study]
    assert study.study_uid == header.StudyInstanceUID
    assert study.modality == header.Modality
    if header.StudyDate:
        assert study.study_date == datetime.datetime.strptime(header.StudyDate, "%Y%m%d").date()
    else:
        assert study.study_date is None
    assert study.description == str(header.get("StudyDescription", ""))
    assert study.uploaded_by == technologist
    assert study.patient.patient_id == header.PatientID
    assert study.patient.sex == header.PatientSex
    series = Series.objects.get()
    assert (series.study, series.series_uid, series.modality) == (
        study,
        header.SeriesInstanceUID,
        header.Modality,
    )
    assert series.series_number == int(header.SeriesNumber)
    instance = Instance.objects.get()
    assert instance.series == series
    assert instance.sop_instance_uid == header.SOPInstanceUID
    assert instance.content_type == Instance.DICOM
    assert (instance.rows, instance.columns) == (header.Rows, header.Columns)
    assert instance.instance_number == int(header.InstanceNumber)
    assert instance.photometric_interpretation == header.PhotometricInterpretation
    assert instance.original_name == name
    assert instance.size_bytes == len(dicom_bytes(name))
    assert len(stored_blobs(image_store)) == 1


def test_the_ct_sample_fills_every_field_a_user_sees(technologist):
    ingest(technologist, ("CT_small.dcm", dicom_bytes("CT_small.dcm")))

    study = Study.objects.select_related("patient").get()
    assert (study.patient.patient_id, study.patient.name, study.patient.sex) == (
        "1CT1",
        "CompressedSamples CT1",
        "O",
    )
    assert study.study_uid == "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    assert (study.modality, study.study_date, study.description) == ("CT", datetime.date(2004, 1, 19), "e+1")
    instance = Instance.objects.get()
    assert instance.sop_instance_uid == "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    assert (instance.rows, instance.columns, instance.number_of_frames) == (128, 128, 1)
    assert instance.photometric_interpretation == "MONOCHROME2"


def test_an_indication_given_at_upload_is_kept_with_the_study(technologist):
    ingest(technologist, ("ct.dcm", dicom_bytes("CT_small.dcm")), indication="  Fall, head injury.  ")
    assert Study.objects.get().indication == "Fall, head injury."


def test_files_of_one_study_become_one_study(technologist):
    """CT_small and MR_small are different patients and studies; two of each go in as two studies."""
    result, created = ingest(
        technologist,
        ("ct.dcm", dicom_bytes("CT_small.dcm")),
        ("mr.dcm", dicom_bytes("MR_small.dcm")),
    )
    assert result.stored == 2
    assert sorted(study.modality for study in created) == ["CT", "MR"]
    assert Patient.objects.count() == Study.objects.count() == Instance.objects.count() == 2


# -- the stored blob -----------------------------------------------------------------------------


def test_the_stored_blob_has_its_preamble_zeroed_and_lives_in_the_image_store(technologist, image_store):
    original = dicom_bytes("CT_small.dcm")
    polyglot = b"MZ\x90\x00" + bytes(range(1, 125)) + original[128:]  # an executable's header in the preamble
    assert any(polyglot[:128])

    ingest(technologist, ("ct.dcm", polyglot))

    instance = Instance.objects.get()
    blob = image_store / storage_name_for(instance.sha256)
    assert stored_blobs(image_store) == [blob]
    stored = blob.read_bytes()
    assert stored[:128] == bytes(128)
    assert stored[128:] == original[128:]
    assert instance.sha256 == hashlib.sha256(stored).hexdigest()
    assert instance.size_bytes == len(stored)
    # The stored file is still a whole DICOM file with the same image.
    assert (
        pydicom.dcmread(io.BytesIO(stored)).pixel_array.tolist()
        == pydicom.dcmread(io.BytesIO(original)).pixel_array.tolist()
    )


def test_the_blob_is_named_by_its_hash_not_by_the_uploaded_name(technologist, image_store):
    ingest(technologist, ("../../etc/passwd.dcm", dicom_bytes("CT_small.dcm")))
    instance = Instance.objects.get()
    [blob] = stored_blobs(image_store)
    assert blob.relative_to(image_store).as_posix() == storage_name_for(instance.sha256)
    assert instance.original_name == "../../etc/passwd.dcm"


# -- PNG and JPEG ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content_type", "modality", "description"),
    [
        ("PNG", Instance.PNG, "CR", "Radiograph (CR) (png)"),
        ("JPEG", Instance.JPEG, "DX", "Radiograph (DX) (jpeg)"),
        ("PNG", Instance.PNG, "CT", "CT slice (png)"),
        ("JPEG", Instance.JPEG, "MR", "MR slice (jpeg)"),
    ],
)
def test_a_plain_image_is_stored_with_the_chosen_modality(
    technologist, image_store, fmt, content_type, modality, description
):
    data = picture(fmt, size=(40, 30))

    result, created = ingest(technologist, (f"chest.{fmt.lower()}", data), image_modality=modality)

    assert (result.stored, result.rejected) == (1, [])
    study = Study.objects.get()
    assert created == [study]
    assert (study.modality, study.description) == (modality, description)
    assert study.body_part == ""  # a picture names no body part: nothing is assumed
    assert Series.objects.get().modality == modality
    instance = Instance.objects.get()
    assert instance.content_type == content_type
    assert (instance.columns, instance.rows) == (40, 30)
    assert instance.photometric_interpretation == "MONOCHROME2"
    # A plain image is stored exactly as sent.
    assert (image_store / storage_name_for(instance.sha256)).read_bytes() == data


def test_a_colour_image_is_recorded_as_rgb(technologist):
    ingest(technologist, ("photo.jpg", picture("JPEG", mode="RGB")), image_modality="DX")
    assert Instance.objects.get().photometric_interpretation == "RGB"


def test_a_plain_image_with_an_unknown_modality_is_refused(technologist, image_store):
    result, _ = ingest(technologist, ("x.png", picture("PNG")), image_modality="PT")
    assert [r.reason for r in result.rejected] == ["unknown modality 'PT' for a plain image"]
    assert_nothing_stored(image_store)


# -- sending the same instance again -------------------------------------------------------------


def test_sending_the_same_instance_again_is_counted_as_a_duplicate(technologist, image_store):
    data = dicom_bytes("CT_small.dcm")
    first, first_created = ingest(technologist, ("ct.dcm", data))

    again, again_created = ingest(technologist, ("ct-again.dcm", data))

    assert (again.stored, again.duplicates, again.rejected) == (0, 1, [])
    assert again_created == []
    assert again.studies == first.studies == first_created
    assert Patient.objects.count() == Study.objects.count() == Series.objects.count() == 1
    assert Instance.objects.count() == 1
    assert Instance.objects.get().original_name == "ct.dcm"
    assert len(stored_blobs(image_store)) == 1


def test_the_same_instance_in_another_transfer_syntax_is_a_duplicate_too(technologist, image_store):
    """MR_small, MR_small_RLE and MR_small_jp2klossless are one instance (one SOP Instance UID)."""
    result, created = ingest(
        technologist,
        ("mr.dcm", dicom_bytes("MR_small.dcm")),
        ("mr-rle.dcm", dicom_bytes("MR_small_RLE.dcm")),
        ("mr-j2k.dcm", dicom_bytes("MR_small_jp2klossless.dcm")),
    )
    assert (result.stored, result.duplicates) == (1, 2)
    assert len(created) == 1
    assert Instance.objects.count() == 1
    assert Instance.objects.get().original_name == "mr.dcm"
    assert len(stored_blobs(image_store)) == 1


def test_receiving_a_study_again_opens_no_second_report(technologist):
    data = dicom_bytes("CT_small.dcm")
    _, [first] = studies_receive(files=[IncomingFile("ct.dcm", data)], uploader=technologist)
    result, [again] = studies_receive(files=[IncomingFile("ct.dcm", data)], uploader=technologist)
    assert result.duplicates == 1
    assert again.pk == first.pk
    assert again.status == ReportStatus.RECEIVED


# -- bad input ---------------------------------------------------------------------------------


def ct_cut_in_its_pixel_data() -> bytes:
    data = dicom_bytes("CT_small.dcm")
    pixel_bytes = 128 * 128 * 2  # Pixel Data is the last element
    return data[: len(data) - pixel_bytes // 2]


def ct_without_dicm_marker() -> bytes:
    data = dicom_bytes("CT_small.dcm")
    return data[:128] + b"XXXX" + data[132:]


BAD_FILES = [
    pytest.param(
        "notes.txt", lambda: b"Patient has a cough.\n", "not a DICOM Part-10 file, PNG or JPEG", id="text"
    ),
    pytest.param("empty.dcm", lambda: b"", "the file is empty", id="empty"),
    pytest.param(
        "MR_truncated.dcm",
        lambda: dicom_bytes("MR_truncated.dcm"),
        "DICOM file is broken: the pixel data is cut short (8,130 of 8,192 bytes)",
        id="pydicom-truncated",
    ),
    pytest.param(
        "ct-cut.dcm",
        ct_cut_in_its_pixel_data,
        "DICOM file is broken: the pixel data is cut short",
        id="cut-in-pixel-data",
    ),
    pytest.param(
        "no-marker.dcm", ct_without_dicm_marker, "not a DICOM Part-10 file, PNG or JPEG", id="no-dicm-marker"
    ),
    pytest.param(
        "no_meta.dcm",
        lambda: dicom_bytes("no_meta.dcm"),
        "not a DICOM Part-10 file, PNG or JPEG",
        id="no-preamble-no-meta",
    ),
    pytest.param("broken.png", lambda: picture("PNG")[:60], "image cannot be decoded", id="truncated-png"),
    pytest.param("broken.jpg", lambda: picture("JPEG")[:-40], "image cannot be decoded", id="truncated-jpeg"),
]


@pytest.mark.parametrize(("name", "make", "reason"), BAD_FILES)
def test_a_bad_file_is_refused_with_a_reason_and_nothing_is_stored(
    technologist, image_store, name, make, reason
):
    result, created = ingest(technologist, (name, make()))

    assert (result.stored, result.studies, created) == (0, [], [])
    [rejection] = result.rejected
    assert rejection.name == name
    assert rejection.reason.startswith(reason)
    assert_nothing_stored(image_store)
    event = AuditEvent.objects.get(event_type=EventType.IMPORT)
    assert (event.outcome, event.action, event.description) == (
        Outcome.MINOR_FAILURE,
        Action.CREATE,
        "File refused",
    )
    assert event.outcome == 4
    assert (event.user, event.username, event.role) == (technologist, "tom", "technologist")
    assert event.detail == {"name": name, "reason": rejection.reason, "source": "upload"}


def test_a_file_over_the_size_limit_is_refused(settings, technologist, image_store):
    settings.MAX_UPLOAD_FILE_BYTES = 10_000
    data = dicom_bytes("CT_small.dcm")

    result, _ = ingest(technologist, ("big.dcm", data))

    assert [(r.name, r.reason) for r in result.rejected] == [
        ("big.dcm", f"the file is {len(data):,} bytes; the limit is 10,000 bytes")
    ]
    assert_nothing_stored(image_store)
    event = AuditEvent.objects.get(event_type=EventType.IMPORT)
    assert event.outcome == Outcome.MINOR_FAILURE


def test_a_file_at_the_size_limit_is_accepted(settings, technologist):
    data = dicom_bytes("CT_small.dcm")
    settings.MAX_UPLOAD_FILE_BYTES = len(data)
    result, _ = ingest(technologist, ("ct.dcm", data))
    assert (result.stored, result.rejected) == (1, [])


def test_in_a_mixed_upload_the_good_file_is_stored_and_the_bad_one_refused(technologist, image_store):
    result, reports = studies_receive(
        files=[
            IncomingFile("ct.dcm", dicom_bytes("CT_small.dcm")),
            IncomingFile("MR_truncated.dcm", dicom_bytes("MR_truncated.dcm")),
            IncomingFile("notes.txt", b"not an image"),
        ],
        uploader=technologist,
    )

    assert result.stored == 1
    assert [r.name for r in result.rejected] == ["MR_truncated.dcm", "notes.txt"]
    study = Study.objects.get()
    assert study.modality == "CT"
    assert [report.study for report in reports] == [study]
    assert reports[0].status == ReportStatus.RECEIVED  # MEDPORTAL_AUTO_DRAFT is off here
    instance = Instance.objects.get()
    assert instance.original_name == "ct.dcm"
    assert stored_blobs(image_store) == [image_store / storage_name_for(instance.sha256)]
    # The truncated MR (a different patient) left no rows behind.
    assert list(Patient.objects.values_list("patient_id", flat=True)) == ["1CT1"]
    events = AuditEvent.objects.filter(event_type=EventType.IMPORT)
    assert [(e.description, e.outcome) for e in events] == [
        ("File refused", Outcome.MINOR_FAILURE),
        ("File refused", Outcome.MINOR_FAILURE),
        ("Instances received", Outcome.SUCCESS),
    ]
    received = events.last()
    assert (received.study_uid, received.patient_id, received.object_id) == (
        study.study_uid,
        "1CT1",
        str(study.pk),
    )


def test_nothing_to_ingest_is_an_error(technologist):
    with pytest.raises(IngestError, match="no files were uploaded"):
        study_ingest(files=[], uploader=technologist)


def test_too_many_files_at_once_is_an_error(settings, technologist, image_store):
    settings.MAX_UPLOAD_FILES = 2
    files = [IncomingFile(f"{i}.dcm", dicom_bytes("CT_small.dcm")) for i in range(3)]
    with pytest.raises(IngestError, match="3 files were sent; the limit is 2"):
        study_ingest(files=files, uploader=technologist)
    assert_nothing_stored(image_store)


@pytest.mark.django_db
def test_a_series_uid_already_in_another_study_is_refused_and_leaves_no_empty_study(
    technologist, settings, tmp_path
):
    import io as _io

    import pydicom as _pydicom
    from pydicom.uid import generate_uid as _uid

    from medportal.imaging.ingest import IncomingFile, study_ingest
    from medportal.imaging.models import Study

    settings.STORAGES = {
        **settings.STORAGES,
        "images": {**settings.STORAGES["images"], "OPTIONS": {"location": tmp_path}},
    }
    study_ingest(files=[IncomingFile("ct.dcm", dicom_bytes("CT_small.dcm"))], uploader=technologist)
    ds = _pydicom.dcmread(_io.BytesIO(dicom_bytes("CT_small.dcm")))
    ds.StudyInstanceUID = _uid()  # another study, claiming the first study's series
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid()
    out = _io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    result, _ = study_ingest(files=[IncomingFile("conflict.dcm", out.getvalue())], uploader=technologist)
    assert [r.reason for r in result.rejected] == [
        "its Series Instance UID already belongs to another study (conflicting UIDs)"
    ]
    assert Study.objects.count() == 1 and not Study.objects.filter(series__isnull=True).exists()
