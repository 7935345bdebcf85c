"""Shared fixtures: personas per role, API tokens, DICOM files that ship with pydicom."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from django.db import connection
from pydicom.data import get_testdata_file

from medportal.access.roles import Role
from medportal.accounts.models import ApiToken

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database as migrated, except that the audit table's TRUNCATE guard is off:
    Django empties the database after each transactional test with TRUNCATE. The guard itself
    is tested with it switched on (tests/audit/test_tamper_evidence.py)."""
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_no_truncate")


@functools.cache
def password_hash() -> str:
    """PASSWORD as the default hasher stores it, made once: hashing is ~0.5 s by design, and
    the suite makes thousands of users. Every user gets this real hash, so logins, sign-offs and
    the web processes of the end-to-end tests check it as they would any other."""
    return make_password(PASSWORD)


def make_user(username: str, *roles: Role, superuser: bool = False) -> User:
    user = User.objects.create(
        username=username, password=password_hash(), is_superuser=superuser, is_staff=superuser
    )
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role.value)[0])
    return user


@pytest.fixture
def radiologist(db) -> User:
    return make_user("rita", Role.RADIOLOGIST)


@pytest.fixture
def second_radiologist(db) -> User:
    return make_user("ravi", Role.RADIOLOGIST)


@pytest.fixture
def technologist(db) -> User:
    return make_user("tom", Role.TECHNOLOGIST)


@pytest.fixture
def auditor(db) -> User:
    return make_user("audrey", Role.AUDITOR)


@pytest.fixture
def outsider(db) -> User:
    """Logged in, but in no role."""
    return make_user("olga")


def token_header(user: User) -> dict[str, str]:
    _, key = ApiToken.issue(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Token {key}"}


@pytest.fixture
def image_store(settings, tmp_path) -> Path:
    """An empty image store of the test's own; studies that arrive are not drafted."""
    store = tmp_path / "images"
    settings.IMAGE_STORE_DIR = store
    images = settings.STORAGES["images"]
    settings.STORAGES = {
        **settings.STORAGES,
        "images": {**images, "OPTIONS": {**images["OPTIONS"], "location": store}},
    }
    settings.MEDPORTAL_AUTO_DRAFT = False
    return store


def dicom_path(name: str) -> Path:
    return Path(get_testdata_file(name))


def dicom_bytes(name: str) -> bytes:
    return dicom_path(name).read_bytes()


def with_body_part(name: str, body_part: str) -> bytes:
    """A sample that ships with pydicom with Body Part Examined set: the samples name none, and
    a draft never guesses one."""
    import io

    import pydicom

    ds = pydicom.dcmread(dicom_path(name))
    ds.BodyPartExamined = body_part
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


# MedPortal as a real DICOMweb server (a session fixture shared by imaging, intake, exports, the worker).
from tests.dicomweb_server import dicomweb_server  # noqa: E402, F401


@pytest.fixture(autouse=True)
def anchor_dir(settings, tmp_path):
    """Each test's own audit anchor log: the test database is emptied between tests, and the
    anchors of another trail (an earlier test's, an end-to-end stack's beat) would not match."""
    settings.MEDPORTAL_AUDIT_ANCHOR_DIR = tmp_path / "anchors"
    return settings.MEDPORTAL_AUDIT_ANCHOR_DIR
