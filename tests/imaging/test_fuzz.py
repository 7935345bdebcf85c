"""Hostile input against the upload form and the API: mutations of real DICOM files and
hand-made attacks. No 5xx, no partial rows, every refusal audited, bounded time and memory.

MEDPORTAL_FUZZ_CASES sets the number of mutations (a short run in CI; a long one by hand)."""

from __future__ import annotations

import io
import os
import random
import struct
import time
import tracemalloc
import zipfile

import pydicom
import pytest
from django.urls import reverse
from pydicom.dataset import Dataset

from medportal.audit.models import AuditEvent, Outcome
from medportal.imaging.models import Instance, Study, storage_name_for
from medportal.imaging.storage import image_storage
from tests.conftest import dicom_bytes, token_header
from tests.dicomweb_server import multipart_body

CASES = int(os.environ.get("MEDPORTAL_FUZZ_CASES", "120"))
SEEDS = ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "rtplan.dcm"]
MAX_SECONDS_PER_FILE = 10
MAX_PEAK_BYTES = 512 * 1024 * 1024


def part10(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def nested_sequences(depth: int) -> bytes:
    """Sequences inside items inside sequences, `depth` deep, as raw explicit-VR bytes
    (undefined lengths) appended to a real file: too deep for any writer to produce."""
    opening = struct.pack("<HH2sHI", 0x0008, 0x1115, b"SQ", 0, 0xFFFFFFFF) + struct.pack(
        "<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF
    )
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return dicom_bytes("CT_small.dcm") + opening * depth + closing * depth


def huge_dimensions() -> bytes:
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 1000
    return part10(ds)


def absurd_length() -> bytes:
    data = bytearray(dicom_bytes("CT_small.dcm"))
    at = data.find(b"\x10\x00\x10\x00")  # PatientName (0010,0010)
    data[at + 6 : at + 8] = struct.pack("<H", 0xFFF0)  # its length far past the end
    return bytes(data)


def polyglot(magic: bytes) -> bytes:
    data = bytearray(dicom_bytes("CT_small.dcm"))
    data[: len(magic)] = magic
    return bytes(data)


def zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.dcm", b"\0" * (200 * 1024 * 1024))
    return out.getvalue()


HOSTILE = {
    "nested-sequences.dcm": lambda: nested_sequences(5000),
    "huge-dimensions.dcm": huge_dimensions,
    "absurd-length.dcm": absurd_length,
    "pe-polyglot.dcm": lambda: polyglot(b"MZ\x90\x00PE\x00\x00"),
    "elf-polyglot.dcm": lambda: polyglot(b"\x7fELF\x02\x01\x01"),
    "bomb.zip": zip_bomb,
    "../../etc/passwd": lambda: dicom_bytes("CT_small.dcm")[:300],
    "nul\x00name.dcm": lambda: b"\0" * 1000,
    "empty.dcm": lambda: b"",
    "truncated-header.dcm": lambda: dicom_bytes("CT_small.dcm")[:140],
}


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    kind = rng.choice(["flip", "truncate", "splice", "length"])
    if kind == "flip":
        for _ in range(rng.randint(1, 20)):
            position = rng.randrange(132, len(data))
            data[position] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del data[rng.randrange(132, len(data)) :]
    elif kind == "splice":
        position = rng.randrange(132, len(data))
        data[position:position] = os.urandom(rng.randint(1, 64))
    else:  # corrupt a 32-bit length field somewhere
        position = rng.randrange(132, len(data) - 4)
        data[position : position + 4] = struct.pack("<I", rng.choice([0xFFFFFFFF, 0xFFFFFFF0, 0x7FFFFFFF, 0]))
    return bytes(data)


def cases() -> list[tuple[str, bytes]]:
    rng = random.Random(1127)
    seeds = [(name, dicom_bytes(name)) for name in SEEDS]
    mutated = [
        (f"mutant-{n}-{name}", mutate(data, rng))
        for n, (name, data) in ((n, rng.choice(seeds)) for n in range(CASES))
    ]
    return [(name, make()) for name, make in HOSTILE.items()] + mutated


def assert_consistent() -> None:
    """No partial rows: every instance has its blob, every study its instances."""
    storage = image_storage()
    for instance in Instance.objects.all():
        assert storage.exists(storage_name_for(instance.sha256)), instance
    assert not Study.objects.filter(series__isnull=True).exists()


def send(client, channel: str, name: str, data: bytes, headers: dict):
    if channel == "stow":
        body, content_type = multipart_body([data])
        return client.generic("POST", reverse("dicomweb-studies"), body, content_type=content_type, **headers)
    url = reverse("api-studies") if channel == "api" else reverse("upload")
    return client.post(url, {"files": [_upload(name, data)]}, **headers)


def was_refused(channel: str, response) -> bool:
    if channel == "stow":  # a store answers per instance: FailedSOPSequence (0008,1198)
        return response.status_code >= 400 or "00081198" in response.json()
    return response.status_code >= 400


@pytest.mark.django_db
@pytest.mark.parametrize("channel", ["api", "form", "stow"])
def test_hostile_files_are_refused_cleanly(channel, client, technologist, image_store):
    headers = token_header(technologist) if channel in ("api", "stow") else {}
    if channel == "form":
        client.force_login(technologist)
    refused = 0
    for name, data in cases():
        if channel == "stow" and name.endswith(".zip"):
            continue  # a store takes DICOM parts only
        before = AuditEvent.objects.filter(outcome=Outcome.MINOR_FAILURE).count()
        tracemalloc.start()
        started = time.monotonic()
        response = send(client, channel, name, data, headers)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert response.status_code < 500, (name, response.status_code)
        assert elapsed < MAX_SECONDS_PER_FILE, (name, elapsed)
        assert peak < MAX_PEAK_BYTES, (name, peak)
        if was_refused(channel, response):
            refused += 1
            assert AuditEvent.objects.filter(outcome=Outcome.MINOR_FAILURE).count() > before, name
        assert_consistent()
    assert refused >= len(HOSTILE) - 3  # polyglots are legitimate DICOM after zeroing the preamble
    for instance in Instance.objects.all():  # nothing stored keeps a hostile preamble
        with image_storage().open(storage_name_for(instance.sha256)) as blob:
            assert blob.read(128) == bytes(128)


def _upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name.replace("\x00", ""), data)
