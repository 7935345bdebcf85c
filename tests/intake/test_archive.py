"""Zip uploads and folders: members go in as files; zip bombs and over-limit zips are refused whole."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from medportal.audit.models import AuditEvent, EventType, Outcome
from medportal.imaging.ingest import IncomingFile
from medportal.imaging.models import Instance, Study, storage_name_for
from medportal.intake.receive import studies_receive
from tests.conftest import dicom_bytes, token_header

CT, MR = dicom_bytes("CT_small.dcm"), dicom_bytes("MR_small.dcm")


pytestmark = pytest.mark.usefixtures("image_store")


def zipped(*members: tuple[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def receive(user, *files: tuple[str, bytes]):
    return studies_receive(files=[IncomingFile(name, data) for name, data in files], uploader=user)


def refusals(result) -> list[tuple[str, str]]:
    return [(r.name, r.reason) for r in result.rejected]


def blobs(store: Path) -> list[Path]:
    return sorted(path for path in store.rglob("*") if path.is_file()) if store.exists() else []


# -- what a zip brings in -------------------------------------------------------------------------


def test_each_member_of_a_zip_is_ingested_like_an_uploaded_file(technologist, image_store):
    archive = zipped(("study/CT_small.dcm", CT), ("study/MR_small.dcm", MR))

    result, reports = receive(technologist, ("scans.zip", archive))

    assert (result.stored, result.rejected) == (2, [])
    assert sorted(r.study.modality for r in reports) == ["CT", "MR"]
    assert sorted(Instance.objects.values_list("original_name", flat=True)) == [
        "scans.zip/study/CT_small.dcm",
        "scans.zip/study/MR_small.dcm",
    ]
    assert len(blobs(image_store)) == 2


def test_directories_and_system_clutter_in_a_zip_are_skipped(technologist):
    archive = zipped(
        ("study/", b""),
        ("study/CT_small.dcm", CT),
        ("study/.DS_Store", b"\x00\x00\x00\x01Bud1"),
        ("__MACOSX/study/._CT_small.dcm", b"\x00\x05\x16\x07"),
        ("study/DICOMDIR", b"not looked at"),
    )
    result, _ = receive(technologist, ("folder.zip", archive))
    assert (result.stored, result.rejected) == (1, [])


def test_a_member_that_is_not_an_image_is_refused_by_name_and_the_rest_stored(technologist):
    result, _ = receive(technologist, ("mixed.zip", zipped(("CT_small.dcm", CT), ("notes.txt", b"cough"))))
    assert result.stored == 1
    assert refusals(result) == [("mixed.zip/notes.txt", "not a DICOM Part-10 file, PNG or JPEG")]


def test_member_names_are_labels_never_paths(technologist, image_store, tmp_path):
    archive = zipped(("../../../escape.dcm", CT), ("/etc/cron.d/x.dcm", MR))

    result, _ = receive(technologist, ("evil.zip", archive))

    assert result.stored == 2
    assert sorted(Instance.objects.values_list("original_name", flat=True)) == [
        "evil.zip/../../../escape.dcm",
        "evil.zip//etc/cron.d/x.dcm",
    ]
    # Only hash-named blobs, inside the store; nothing beside it.
    assert [p.relative_to(image_store).as_posix() for p in blobs(image_store)] == sorted(
        storage_name_for(i.sha256) for i in Instance.objects.all()
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


def test_control_characters_in_a_member_name_do_not_reach_the_database(technologist):
    archive = zipped(("bad\x01name\x7f.dcm", CT))
    result, _ = receive(technologist, ("c.zip", archive))
    assert result.stored == 1
    assert Instance.objects.get().original_name == "c.zip/bad?name?.dcm"


def test_a_zip_inside_a_zip_is_unpacked_one_level_deep(technologist):
    inner = zipped(("MR_small.dcm", MR))
    result, _ = receive(technologist, ("outer.zip", zipped(("CT_small.dcm", CT), ("series2.zip", inner))))
    assert (result.stored, result.rejected) == (2, [])
    assert "outer.zip/series2.zip/MR_small.dcm" in Instance.objects.values_list("original_name", flat=True)


def test_a_zip_of_zips_of_zips_is_refused_whole(technologist, image_store):
    deepest = zipped(("CT_small.dcm", CT))
    archive = zipped(("MR_small.dcm", MR), ("a.zip", zipped(("b.zip", deepest))))

    result, reports = receive(technologist, ("nested.zip", archive))

    assert (result.stored, reports) == (0, [])
    assert refusals(result) == [
        ("nested.zip", "zip file refused: it nests zip files more than 1 deep ('nested.zip/a.zip/b.zip')")
    ]
    assert blobs(image_store) == []


# -- zip bombs and limits ---------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_audited_and_the_other_files_are_stored(technologist, image_store):
    bomb = zipped(("CT_small.dcm", CT), ("zeros.dcm", bytes(20 * 1024 * 1024)))

    result, reports = receive(technologist, ("ct.dcm", CT), ("bomb.zip", bomb), ("mr.dcm", MR))

    assert refusals(result) == [
        ("bomb.zip", "zip file refused: 'zeros.dcm' is compressed more than 100:1 (a zip bomb?)")
    ]
    assert result.stored == 2
    assert sorted(r.study.modality for r in reports) == ["CT", "MR"]
    assert sorted(Instance.objects.values_list("original_name", flat=True)) == ["ct.dcm", "mr.dcm"]
    event = AuditEvent.objects.get(event_type=EventType.IMPORT, outcome=Outcome.MINOR_FAILURE)
    assert (event.description, event.user) == ("File refused", technologist)
    assert event.detail == {"name": "bomb.zip", "reason": refusals(result)[0][1], "source": "upload"}


def test_the_compression_ratio_limit_comes_from_settings(settings, technologist):
    settings.MAX_ARCHIVE_RATIO = 10_000
    result, _ = receive(
        technologist, ("ok.zip", zipped(("CT_small.dcm", CT), ("zeros.dcm", bytes(1024 * 1024))))
    )
    assert result.stored == 1
    assert refusals(result) == [("ok.zip/zeros.dcm", "not a DICOM Part-10 file, PNG or JPEG")]


def test_a_zip_with_too_many_files_is_refused(settings, technologist):
    settings.MAX_ARCHIVE_MEMBERS = 2
    archive = zipped(*[(f"{n}.dcm", CT) for n in range(3)])
    result, _ = receive(technologist, ("many.zip", archive))
    assert refusals(result) == [("many.zip", "zip file refused: it holds more than 2 files")]
    assert not Instance.objects.exists()


def test_a_zip_that_unpacks_to_too_much_is_refused(settings, technologist):
    settings.MAX_ARCHIVE_UNPACKED_BYTES = len(CT) + len(MR) - 1
    result, _ = receive(technologist, ("big.zip", zipped(("ct.dcm", CT), ("mr.dcm", MR))))
    assert refusals(result) == [
        ("big.zip", f"zip file refused: it unpacks to more than {len(CT) + len(MR) - 1:,} bytes")
    ]
    assert not Study.objects.exists()


def test_nested_zips_share_the_unpacked_size_budget(settings, technologist):
    settings.MAX_ARCHIVE_UNPACKED_BYTES = len(CT) + len(MR) + 500  # room for the files, not the inner zip too
    archive = zipped(("ct.dcm", CT), ("inner.zip", zipped(("mr.dcm", MR), compression=zipfile.ZIP_STORED)))
    result, _ = receive(technologist, ("big.zip", archive))
    assert refusals(result)[0][1].startswith("zip file refused: it unpacks to more than")


def test_a_member_over_the_file_size_limit_is_refused_and_the_others_stored(settings, technologist):
    settings.MAX_UPLOAD_FILE_BYTES = len(MR)
    result, _ = receive(technologist, ("two.zip", zipped(("ct.dcm", CT), ("mr.dcm", MR))))
    assert result.stored == 1
    assert refusals(result) == [("two.zip/ct.dcm", f"the file is over the limit of {len(MR):,} bytes")]


def encrypted(archive: bytes) -> bytes:
    """The same zip with every member marked encrypted (zipfile cannot write encrypted zips)."""
    data = bytearray(archive)
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            data[start + flag_offset] |= 0x01
            start += 4
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            lambda: zipped(("ct.dcm", CT))[:-30],
            "zip file refused: it is not a readable zip file (File is not a zip file)",
        ),
        (lambda: encrypted(zipped(("ct.dcm", CT))), "zip file refused: it is encrypted"),
        (lambda: zipped(), "zip file refused: it holds no files"),
        (lambda: zipped(("dir/", b"")), "zip file refused: it holds no files"),
    ],
    ids=["truncated", "encrypted", "empty", "only-a-directory"],
)
def test_a_zip_that_cannot_be_unpacked_is_refused_with_the_reason(technologist, data, reason):
    result, reports = receive(technologist, ("x.zip", data()))
    assert (refusals(result), reports) == ([("x.zip", reason)], [])


def test_a_member_whose_bytes_are_damaged_refuses_the_zip(technologist):
    archive = bytearray(zipped(("ct.dcm", CT)))
    archive[len(archive) // 2] ^= 0xFF  # inside the compressed data: a CRC or inflate error
    result, _ = receive(technologist, ("bad.zip", bytes(archive)))
    [(name, reason)] = refusals(result)
    assert name == "bad.zip"
    assert reason.startswith("zip file refused: 'bad.zip/ct.dcm' cannot be unpacked")


# -- through the upload page and the API -----------------------------------------------------------


@pytest.fixture
def tom(client, technologist):
    client.force_login(technologist)
    return client


def test_the_upload_page_offers_zip_files_and_a_folder(tom):
    page = tom.get(reverse("upload")).content.decode()
    assert ".zip" in page
    assert '<input type="file" name="folder" multiple webkitdirectory directory id="id_folder">' in page


def test_a_zip_and_the_files_of_a_folder_are_uploaded_through_the_page(tom):
    response = tom.post(
        reverse("upload"),
        {
            "files": [SimpleUploadedFile("scans.zip", zipped(("CT_small.dcm", CT)), "application/zip")],
            "folder": [SimpleUploadedFile("MR_small.dcm", MR, "application/dicom")],
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "Stored 2 images" in response.content.decode()
    assert Study.objects.count() == 2


def test_a_folder_alone_is_enough_to_upload(tom):
    response = tom.post(reverse("upload"), {"folder": [SimpleUploadedFile("CT_small.dcm", CT)]})
    assert response.status_code == 302
    assert Study.objects.get().modality == "CT"


def test_a_zip_bomb_through_the_page_is_listed_with_its_reason(tom):
    bomb = zipped(("zeros.dcm", bytes(20 * 1024 * 1024)))
    response = tom.post(
        reverse("upload"),
        {"files": [SimpleUploadedFile("bomb.zip", bomb), SimpleUploadedFile("ct.dcm", CT)]},
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert (
        "<strong>bomb.zip</strong>: zip file refused: &#x27;zeros.dcm&#x27; is compressed more than 100:1"
        in page
    )
    assert "Stored 1 image" in page


def test_the_api_takes_a_zip(client, technologist):
    archive = zipped(("CT_small.dcm", CT), ("notes.txt", b"cough"))
    response = client.post(
        reverse("api-studies"),
        {"files": [SimpleUploadedFile("scans.zip", archive)], "auto_draft": "false"},
        **token_header(technologist),
    )
    assert response.status_code == 201
    body = response.json()
    assert [s["study_uid"] for s in body["studies"]] == ["1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"]
    assert body["rejected"] == [
        {"file": "scans.zip/notes.txt", "reason": "not a DICOM Part-10 file, PNG or JPEG"}
    ]
