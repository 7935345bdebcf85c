"""De-identification (PS3.15 Annex E) against the whole of Table E.1-1, and the study export."""

from __future__ import annotations

import datetime
import io
import zipfile

import pydicom
import pytest
from django.urls import reverse
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from medportal.audit.models import AuditEvent, EventType, Outcome
from medportal.imaging.deid_table import BY_TAG, ROWS, row_for
from medportal.imaging.deidentify import DeidentificationRefused, DeidOptions, instance_deidentify
from medportal.imaging.ingest import IncomingFile, study_ingest
from medportal.imaging.models import Study
from tests.conftest import dicom_path

pytestmark = pytest.mark.usefixtures("image_store")


KEY = b"test key: not a secret"
ALL_OPTIONS = DeidOptions()
BASIC_ONLY = DeidOptions(
    retain_modified_dates=False, retain_patient_characteristics=False, clean_descriptors=False
)
# Three original dates more than ten years apart: a shift (at most 3650 days) of one can never
# land on another, so finding any of them in the output means a date was left as it was.
DATES = ["19230517", "19470911", "20310203"]
TIME = "071531.123456"
SOP_UID = "1.2.826.0.1.3680043.10.543.1.1.7"
STUDY_UID = "1.2.826.0.1.3680043.10.543.1.2.7"
NESTED_MARKERS = ["M7F3ANESTEDPN", "M7F3ANESTEDPT", "M7F3APRIVATE1", "M7F3APRIVATE2"]
COMPOUND = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "U"}


# -- a dataset holding every attribute of the table ----------------------------------------------


def marker(tag: int) -> str:
    """13 characters, unique to the attribute: fits every text VR with room for a word."""
    return f"M7F3A{tag:08X}"


def uid_of(tag: int) -> str:
    # Ends in ".7" so that no original UID is the beginning of another.
    return f"1.2.826.0.1.3680043.10.543.{tag}.7"


def date_of(tag: int) -> str:
    return DATES[tag % len(DATES)]


def item() -> Dataset:
    """What a sequence item of the table holds: a reference, a name, a nested unlisted
    sequence with a patient name, and private attributes at both levels."""
    nested = Dataset()
    nested.CodeValue = "T-D3000"
    nested.CodingSchemeDesignator = "SRT"
    nested.CodeMeaning = "Chest"
    nested.PatientName = "M7F3ANESTEDPT"
    nested.private_block(0x0011, "ACME", create=True).add_new(0x01, "LO", "M7F3APRIVATE2")
    ds = Dataset()
    ds.ReferencedSOPClassUID = CTImageStorage
    ds.ReferencedSOPInstanceUID = SOP_UID
    ds.PersonName = "M7F3ANESTEDPN"
    ds.AnatomicRegionSequence = Sequence([nested])
    return ds


def value_for(tag: int, vr: str):
    text = marker(tag)
    if vr == "SQ":
        return Sequence([item()])
    if vr == "UI":
        return {0x00080018: SOP_UID, 0x0020000D: STUDY_UID}.get(tag, uid_of(tag))
    if vr == "DA":
        return date_of(tag)
    if vr == "DT":
        return date_of(tag) + TIME + ("+0100" if tag % 2 else "")
    if vr == "TM":
        return TIME
    if tag == 0x00080201:  # Timezone Offset From UTC
        return "-0500"
    if vr == "AS":
        return "042Y"
    if vr in {"AE", "CS"}:
        return text
    if vr == "SH":
        return f"{text} CT"
    if vr == "PN":
        return f"{text}^Smith"
    if vr in {"LO", "ST", "LT", "UT", "UC"}:
        return f"{text} Smith CHEST"
    if vr == "UR":
        return f"http://example.org/{text}"
    if vr == "DS":
        return "4242.5"
    if vr == "IS":
        return "424242"
    if vr in {"FL", "FD"}:
        return 42.5
    if vr in {"US", "SS", "UL", "SL", "UV", "SV"}:
        return 4242
    if vr == "AT":
        return 0x00100020
    return text.encode().ljust(16, b"\0")  # OB, OW, OD, OF, OL, OV, UN


def table_tags() -> list[tuple[int, str]]:
    """(tag, VR) for every row: the repeating groups by their first group; the command
    (0000) and file meta (0002) groups never appear in a stored data set."""
    tags = [(tag, dictionary_VR(tag).split(" or ")[0]) for tag in BY_TAG if tag >> 16 not in (0x0000, 0x0002)]
    return tags + [(0x50003000, "OB"), (0x60003000, "OW"), (0x60004000, "LT")]


def full_dataset(*, sop_uid: str = SOP_UID, patient_id: str | None = None) -> Dataset:
    ds = Dataset()
    for tag, vr in table_tags():
        ds.add_new(tag, vr, value_for(tag, vr))
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    if patient_id is not None:
        ds.PatientID = patient_id
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(32)
    ds.add_new(0x60000010, "US", 4)  # the rest of an overlay plane
    ds.private_block(0x0009, "ACME", create=True).add_new(0x01, "LO", "M7F3APRIVATE1")
    ds.private_block(0x0009, "ACME").add_new(0x02, "SQ", Sequence([item()]))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.SourceApplicationEntityTitle = "M7F3ASOURCEAE"
    ds.preamble = b"MZ" + b"\x90" * 126  # a hostile preamble
    return ds


def part10(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def deidentify(ds: Dataset, options: DeidOptions = ALL_OPTIONS, key: bytes = KEY) -> tuple[bytes, Dataset]:
    data = instance_deidentify(data=part10(ds), key=key, options=options)
    return data, pydicom.dcmread(io.BytesIO(data))


def expected_action(tag: int, options: DeidOptions) -> str:
    """Table E.1-1 read the way the module documents it: K over C over the basic action."""
    row = row_for(tag)
    on = {"MD": options.retain_modified_dates, "PC": options.retain_patient_characteristics}
    on["CD"] = options.clean_descriptors
    chosen = {action for column, action in row.options.items() if on.get(column)}
    return "K" if "K" in chosen else "C" if "C" in chosen else COMPOUND.get(row.basic, row.basic)


def walk(ds: Dataset):
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for sub in elem.value:
                yield from walk(sub)


# -- the table itself ---------------------------------------------------------------------------


def test_the_table_is_the_full_standard_table():
    assert len(ROWS) > 600
    names = {row.name for row in ROWS}
    for name in ["Patient's Name", "Patient ID", "Study Instance UID", "Study Date", "Institution Name"]:
        assert name in names
    assert row_for(0x00100010).basic == "Z"
    assert row_for(0x00080020).options == {"FD": "K", "MD": "C"}
    assert row_for(0x00101010).options == {"PC": "K"}
    assert row_for(0x00081030).options == {"CD": "C"}
    assert row_for(0x60023000).name == "Overlay Data"  # repeating groups match their pattern
    assert row_for(0x50103000).name == "Curve Data"
    assert row_for(0x00280010) is None  # Rows: not an identifier


# -- every attribute, with all three options -----------------------------------------------------


@pytest.fixture(scope="module")
def with_options() -> tuple[bytes, Dataset]:
    return deidentify(full_dataset())


@pytest.fixture(scope="module")
def basic_only() -> tuple[bytes, Dataset]:
    return deidentify(full_dataset(), BASIC_ONLY)


def date_shift(out: Dataset) -> datetime.timedelta:
    original = datetime.datetime.strptime(date_of(0x00080020), "%Y%m%d")
    return original - datetime.datetime.strptime(out.StudyDate, "%Y%m%d")


def check_row(tag: int, vr: str, out: Dataset, options: DeidOptions) -> None:
    action = expected_action(tag, options)
    original = value_for(tag, vr)
    elem = out.get(tag)
    where = f"{row_for(tag).name} ({tag:08X}, {vr}, {action})"
    if action == "C" and row_for(tag).options.get("MD") == "C" and options.retain_modified_dates:
        if vr == "DA":
            shifted = datetime.datetime.strptime(elem.value, "%Y%m%d")
            assert datetime.datetime.strptime(original, "%Y%m%d") - shifted == date_shift(out), where
            return
        if vr == "DT":
            assert elem.value[8:] == original[8:], where  # time of day and UTC offset kept
            shifted = datetime.datetime.strptime(elem.value[:8], "%Y%m%d")
            assert datetime.datetime.strptime(original[:8], "%Y%m%d") - shifted == date_shift(out), where
            return
        if vr in {"TM", "SH"}:  # whole-day shift: times and the UTC offset stay
            assert elem.value == original, where
            return
        action = COMPOUND.get(row_for(tag).basic, row_for(tag).basic)  # cannot shift: basic action
    if action == "C":
        if vr == "SQ":
            assert len(elem.value) == 1, where
            inner = elem.value[0]
            assert inner.PersonName == "ANONYMIZED", where
            assert inner.ReferencedSOPInstanceUID == out.SOPInstanceUID, where
            return
        if vr in {"LO", "ST", "LT", "UT", "UC", "SH"}:
            assert elem.value == ("CT" if vr == "SH" else "CHEST"), where
            return
        action = COMPOUND.get(row_for(tag).basic, row_for(tag).basic)
    if action == "X":
        assert elem is None, where
    elif action == "K":
        assert elem.value == original, where
    elif action == "Z":
        assert elem is not None and elem.is_empty, where
    elif action == "U":
        if vr == "SQ":  # U*: kept, its UIDs replaced
            assert elem.value[0].ReferencedSOPInstanceUID == out.SOPInstanceUID, where
            assert elem.value[0].ReferencedSOPClassUID == CTImageStorage, where
        else:
            assert elem.value.startswith("2.25.") and elem.value != original, where
    elif action == "D":
        dummies = {"DA": "19000101", "TM": "000000", "DT": "19000101000000", "AS": "000D"}
        if tag == 0x00100020:
            assert elem.value.startswith("ANON") and len(elem.value) == 16, where
        elif vr == "SQ":
            assert len(elem.value) == 1 and len(elem.value[0]) == 0, where
        elif vr == "UI":
            assert elem.value.startswith("2.25."), where
        elif vr in dummies:
            assert elem.value == dummies[vr], where
        elif vr in {"IS", "DS"}:
            assert str(elem.value) == "0", where
        elif vr in {"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT"}:
            assert elem.value == 0, where
        elif vr in {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}:
            assert elem.value == b"\0\0", where
        else:
            assert elem.value in ("ANONYMIZED", "urn:anonymized"), where
    else:
        raise AssertionError(f"{where}: unexpected action")


@pytest.mark.parametrize("options", [ALL_OPTIONS, BASIC_ONLY], ids=["all-options", "basic-only"])
def test_every_row_of_the_table_gets_its_action(options, with_options, basic_only):
    _, out = with_options if options == ALL_OPTIONS else basic_only
    checked = 0
    for tag, vr in table_tags():
        if tag >> 16 in (0x5000, 0x6000):
            continue  # checked below
        check_row(tag, vr, out, options)
        checked += 1
    assert checked > 590


def test_the_dates_of_one_patient_move_by_one_offset_and_times_stay(with_options):
    _, out = with_options
    shift = date_shift(out)
    assert datetime.timedelta(days=1) <= shift <= datetime.timedelta(days=3650)
    _, again = deidentify(full_dataset(sop_uid="1.2.826.0.1.3680043.10.543.1.3.7"))
    assert date_shift(again) == shift  # same patient, another instance: same offset
    _, other = deidentify(full_dataset(patient_id="M7F3AOTHERPID"))
    assert date_shift(other) != shift  # another patient, another offset
    assert out.SeriesTime == out.AcquisitionTime == TIME
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"


def test_patient_characteristics_are_kept_with_that_option(with_options, basic_only):
    _, out = with_options
    assert (out.PatientAge, out.PatientSex, out.PatientWeight) == ("042Y", marker(0x00100040), 4242.5)
    assert out.PatientSize == 4242.5 and out.PregnancyStatus == 4242
    assert out.PatientBirthDate == ""  # never a characteristic
    _, basic = basic_only
    assert "PatientAge" not in basic and basic.PatientSex == ""


@pytest.mark.parametrize("options", [ALL_OPTIONS, BASIC_ONLY], ids=["all-options", "basic-only"])
def test_no_original_identifier_is_left_anywhere_in_the_bytes(options, with_options, basic_only):
    data, out = with_options if options == ALL_OPTIONS else basic_only
    kept = {tag for tag, _ in table_tags() if expected_action(tag, options) == "K"}
    leaks = []
    for tag, vr in table_tags():
        if tag not in kept and marker(tag).encode() in data:
            leaks.append(f"{row_for(tag).name}: {marker(tag)}")
        if vr == "UI" and value_for(tag, vr).encode() in data:
            leaks.append(f"{row_for(tag).name}: original UID")
    for text in [*DATES, *NESTED_MARKERS, "M7F3ASOURCEAE", SOP_UID, STUDY_UID, "Smith"]:
        if text.encode() in data:
            leaks.append(text)
    assert leaks == []
    assert out.PatientName == "" and out.PatientID != marker(0x00100020)


def test_private_tags_overlays_and_the_preamble_go(with_options):
    data, out = with_options
    assert not [elem.tag for elem in walk(out) if elem.tag.is_private]
    assert not [elem.tag for elem in out if elem.tag.group & 0xFF00 in (0x5000, 0x6000)]
    assert data[:128] == bytes(128) and data[128:132] == b"DICM"


def test_nested_sequences_are_de_identified_at_every_depth(with_options):
    _, out = with_options
    image_ref = out.ReferencedImageSequence[0]  # X/Z/U*: kept, UIDs inside replaced
    assert image_ref.ReferencedSOPInstanceUID == out.SOPInstanceUID
    assert image_ref.PersonName == "ANONYMIZED"
    region = image_ref.AnatomicRegionSequence[0]  # a sequence the table does not list
    assert (region.CodeValue, region.CodeMeaning) == ("T-D3000", "Chest")
    assert region.PatientName == ""


def test_uids_are_replaced_consistently_and_the_method_is_recorded(with_options):
    data, out = with_options
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID != SOP_UID
    assert "SourceApplicationEntityTitle" not in out.file_meta
    second_uid = "1.2.826.0.1.3680043.10.543.1.4.7"
    _, second = deidentify(full_dataset(sop_uid=second_uid))
    assert second.StudyInstanceUID == out.StudyInstanceUID != STUDY_UID
    assert second.SeriesInstanceUID == out.SeriesInstanceUID
    assert second.FrameOfReferenceUID == out.FrameOfReferenceUID
    assert second.SOPInstanceUID != out.SOPInstanceUID
    assert deidentify(full_dataset())[0] == data  # deterministic under one key
    _, other_key = deidentify(full_dataset(), key=b"another key")
    assert other_key.StudyInstanceUID != out.StudyInstanceUID
    assert out.PatientIdentityRemoved == "YES"
    assert [item.CodeValue for item in out.DeidentificationMethodCodeSequence] == [
        "113100",
        "113107",
        "113108",
        "113105",
    ]
    assert {item.CodingSchemeDesignator for item in out.DeidentificationMethodCodeSequence} == {"DCM"}
    assert "Basic Application Confidentiality Profile" in out.DeidentificationMethod


def test_clean_keeps_what_was_imaged_and_drops_the_rest():
    ds = full_dataset()
    ds.StudyDescription = "CT Chest w contrast 5mm John Smith 12345678 19230517"
    ds.SeriesDescription = "Dr. Jones"
    ds.TimezoneOffsetFromUTC = "M7F3A EST"
    _, out = deidentify(ds)
    assert out.StudyDescription == "CT Chest contrast 5mm"
    assert "SeriesDescription" not in out  # nothing left: the basic action (X)
    assert "TimezoneOffsetFromUTC" not in out  # not an offset: the basic action (X)


def test_an_instance_with_burned_in_annotation_is_refused():
    ds = full_dataset()
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(DeidentificationRefused, match="Burned In Annotation"):
        instance_deidentify(data=part10(ds), key=KEY, options=ALL_OPTIONS)
    ds.BurnedInAnnotation = "NO"
    instance_deidentify(data=part10(ds), key=KEY, options=ALL_OPTIONS)


def test_real_samples_keep_their_pixels():
    samples = ["CT_small.dcm", "MR_small.dcm", "MR_small_bigendian.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm"]
    for name in samples:
        original = pydicom.dcmread(dicom_path(name))
        data = instance_deidentify(data=dicom_path(name).read_bytes(), key=KEY, options=ALL_OPTIONS)
        out = pydicom.dcmread(io.BytesIO(data))
        assert out.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert (out.pixel_array == original.pixel_array).all(), name
        assert original.StudyInstanceUID.encode() not in data
        assert str(original.PatientName).encode() not in data
        assert original.PatientID.encode() not in data


# -- the study export ----------------------------------------------------------------------------


def ct_series(count: int) -> list[bytes]:
    """``count`` instances of one series made from CT_small."""
    files = []
    for number in range(1, count + 1):
        ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{ds.SOPInstanceUID}.{number}"
        ds.InstanceNumber = number
        files.append(part10(ds))
    return files


def mr_in_the_ct_study() -> bytes:
    """MR_small moved into CT_small's study and patient: a second series of the same study."""
    ct = pydicom.dcmread(dicom_path("CT_small.dcm"), stop_before_pixels=True)
    ds = pydicom.dcmread(dicom_path("MR_small.dcm"))
    ds.StudyInstanceUID, ds.PatientID, ds.PatientName = ct.StudyInstanceUID, ct.PatientID, ct.PatientName
    return part10(ds)


@pytest.fixture
def study(technologist) -> Study:
    files = [IncomingFile(f"ct{n}.dcm", data) for n, data in enumerate(ct_series(3))]
    files.append(IncomingFile("mr.dcm", mr_in_the_ct_study()))
    result, _ = study_ingest(files=files, uploader=technologist)
    assert result.stored == 4 and not result.rejected
    return result.studies[0]


def export_url(study: Study) -> str:
    return reverse("study-export-deidentified", args=[study.pk])


def test_the_export_is_a_zip_of_de_identified_dicom_with_consistent_uids(study, radiologist, client):
    client.force_login(radiologist)
    response = client.get(export_url(study))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert str(study.pk) in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    names = archive.namelist()
    assert len(names) == 4 and all(name.endswith(".dcm") for name in names)
    members = [archive.read(name) for name in names]
    out = [pydicom.dcmread(io.BytesIO(data)) for data in members]
    ct = pydicom.dcmread(dicom_path("CT_small.dcm"))
    mr = pydicom.dcmread(dicom_path("MR_small.dcm"))
    assert {ds.StudyInstanceUID for ds in out} == {out[0].StudyInstanceUID} != {ct.StudyInstanceUID}
    cts = [ds for ds in out if ds.Modality == "CT"]
    mrs = [ds for ds in out if ds.Modality == "MR"]
    assert len(cts) == 3 and len(mrs) == 1
    assert len({ds.SeriesInstanceUID for ds in cts}) == 1
    assert mrs[0].SeriesInstanceUID != cts[0].SeriesInstanceUID
    assert len({ds.FrameOfReferenceUID for ds in cts}) == 1
    assert len({ds.SOPInstanceUID for ds in out}) == 4
    assert all(ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID for ds in out)
    assert len({ds.PatientID for ds in out}) == 1
    assert sorted(ds.InstanceNumber for ds in cts) == [1, 2, 3]
    assert all((ds.pixel_array == ct.pixel_array).all() for ds in cts)
    assert (mrs[0].pixel_array == mr.pixel_array).all()
    originals = [
        ct.StudyInstanceUID,
        ct.SeriesInstanceUID,
        ct.SOPInstanceUID,
        mr.SeriesInstanceUID,
        mr.SOPInstanceUID,
        ct.PatientID,
        str(ct.PatientName),
        ct.StudyDate,
        mr.StudyDate,
    ]
    for data in members:
        assert [text for text in originals if text.encode() in data] == []
    assert all(ds.PatientIdentityRemoved == "YES" for ds in out)

    event = AuditEvent.objects.filter(event_type=EventType.EXPORT).get()
    assert (event.outcome, event.object_id, event.username) == (Outcome.SUCCESS, str(study.pk), "rita")
    assert event.study_uid == ct.StudyInstanceUID  # the trail says whose data left
    assert event.detail["instances"] == 4 and event.detail["deidentified"] is True


def test_a_technologist_may_not_export(study, technologist, client):
    client.force_login(technologist)
    assert client.get(export_url(study)).status_code == 403
    assert not AuditEvent.objects.filter(event_type=EventType.EXPORT).exists()


def test_the_study_page_offers_the_export_to_radiologists_only(study, radiologist, technologist, client):
    client.force_login(radiologist)
    assert export_url(study) in client.get(reverse("study-detail", args=[study.pk])).content.decode()
    client.force_login(technologist)
    assert export_url(study) not in client.get(reverse("study-detail", args=[study.pk])).content.decode()


def test_a_study_with_burned_in_annotation_is_not_exported(technologist, radiologist, client):
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    ds.BurnedInAnnotation = "YES"
    result, _ = study_ingest(files=[IncomingFile("ct.dcm", part10(ds))], uploader=technologist)
    study = result.studies[0]
    client.force_login(radiologist)

    response = client.get(export_url(study), follow=True)

    assert response.redirect_chain[-1][0] == reverse("study-detail", args=[study.pk])
    assert "Burned In Annotation" in response.content.decode()
    event = AuditEvent.objects.filter(event_type=EventType.EXPORT).get()
    assert event.outcome == Outcome.MINOR_FAILURE
    assert "Burned In Annotation" in event.detail["reason"]


# -- on ingest, per source -----------------------------------------------------------------------


def test_a_source_set_to_de_identify_stores_only_de_identified_instances(settings, technologist, image_store):
    settings.MEDPORTAL_DEIDENTIFY_ON_INGEST_SOURCES = ["upload"]
    ct = pydicom.dcmread(dicom_path("CT_small.dcm"))
    data = dicom_path("CT_small.dcm").read_bytes()

    result, created = study_ingest(files=[IncomingFile("SMITH_JOHN.dcm", data)], uploader=technologist)

    assert result.stored == 1 and not result.rejected
    study = created[0]
    assert study.study_uid.startswith("2.25.") and study.study_uid != ct.StudyInstanceUID
    assert study.patient.patient_id.startswith("ANON") and study.patient.name == ""
    instance = study.series.get().instances.get()
    assert instance.original_name == ""
    blob = next(path for path in image_store.rglob("*") if path.is_file()).read_bytes()
    assert pydicom.dcmread(io.BytesIO(blob)).PatientIdentityRemoved == "YES"
    for text in [ct.StudyInstanceUID, ct.SOPInstanceUID, ct.PatientID, str(ct.PatientName)]:
        assert text.encode() not in blob
    # The same file again is the same instance (the UIDs map the same way), not a new one.
    again, _ = study_ingest(files=[IncomingFile("again.dcm", data)], uploader=technologist)
    assert (again.stored, again.duplicates) == (0, 1)
    # Another source is not de-identified.
    other, _ = study_ingest(files=[IncomingFile("ct.dcm", data)], uploader=technologist, source="api")
    assert other.studies[0].study_uid == ct.StudyInstanceUID


def test_burned_in_annotation_is_refused_on_a_de_identifying_source(settings, technologist):
    settings.MEDPORTAL_DEIDENTIFY_ON_INGEST_SOURCES = ["upload"]
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    ds.BurnedInAnnotation = "YES"

    result, _ = study_ingest(files=[IncomingFile("ct.dcm", part10(ds))], uploader=technologist)

    assert result.stored == 0
    assert "cannot be de-identified" in result.rejected[0].reason
    assert not Study.objects.exists()
