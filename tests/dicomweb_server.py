"""A real web server (daphne, the ASGI app) on the test database, for DICOMweb clients.

One server per test session; each test that uses it takes ``transactional_db`` so
the rows it writes are visible to the server and removed afterwards. New studies
are drafted automatically, as in production; the drafts go to a queue of this
session's own that no worker reads and that is deleted at the end.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
import redis
import requests
from dicomweb_client.api import DICOMwebClient
from django.conf import settings

from medportal.accounts.models import ApiToken
from tests.e2e.conftest import ARTIFACTS, ROOT, database_url, free_port, stop, wait_for_log


@dataclass
class DicomwebServer:
    base_url: str
    image_store: Path
    queue: str

    def client(self, user, **kwargs) -> DICOMwebClient:
        """The dicomweb-client package's client, signed in as ``user``."""
        return DICOMwebClient(url=f"{self.base_url}/dicomweb", headers=_token(user), **kwargs)

    def session(self, user) -> requests.Session:
        """Plain HTTP as ``user``, for what the client package hides (headers, raw bytes)."""
        session = requests.Session()
        session.headers.update(_token(user))
        return session

    def url(self, path: str) -> str:
        return f"{self.base_url}/dicomweb/{path.lstrip('/')}"


def _token(user) -> dict[str, str]:
    _, key = ApiToken.issue(user=user, name="dicomweb test")
    return {"Authorization": f"Token {key}"}


@pytest.fixture(scope="session")
def dicomweb_server(django_db_setup, tmp_path_factory) -> DicomwebServer:
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    queue = f"dicomweb-{uuid.uuid4().hex[:8]}"
    store = tmp_path_factory.mktemp("dicomweb") / "images"
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        MEDPORTAL_QUEUE=queue,
        MEDPORTAL_MODEL="tiny",
        MEDPORTAL_AUTO_DRAFT="true",
        MEDPORTAL_IMAGE_STORE=str(store),
        MEDPORTAL_DATA_DIR=str(settings.DATA_DIR),
        PYTHONPATH=str(ROOT),
    )
    log = open(ARTIFACTS / f"web-{queue}.log", "ab")  # noqa: SIM115
    web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "medportal.asgi:application"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_log(log.name, b"Listening on TCP address", web)
        yield DicomwebServer(f"http://127.0.0.1:{port}", store, queue)
    finally:
        stop(web)
        redis.Redis.from_url(settings.REDIS_URL).delete(queue)


# -- what the tests send and read ---------------------------------------------------------------


def encoded(ds: pydicom.Dataset) -> bytes:
    """The bytes dicomweb-client sends for ``ds`` (it writes each dataset with pydicom)."""
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds)
    return out.getvalue()


def multipart_body(parts: list[bytes], boundary: str = "medportal-test-boundary") -> tuple[bytes, str]:
    """A STOW-RS body of raw parts, and its Content-Type."""
    body = b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + part + b"\r\n"
        for part in parts
    )
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return body + b"--" + boundary.encode() + b"--\r\n", content_type


def multipart_parts(response: requests.Response) -> list[tuple[str, bytes]]:
    """(Content-Type, bytes) of each part of a multipart/related response."""
    content_type = response.headers["Content-Type"]
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    parts = []
    for chunk in response.content.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, body = chunk.partition(b"\r\n\r\n")
        header = head.decode().strip().partition(":")[2].strip()
        parts.append((header, body.removesuffix(b"\r\n")))
    return parts
