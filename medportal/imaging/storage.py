"""Content-addressed image store (Django storage API), outside every served folder."""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from medportal.imaging.models import storage_name_for


def image_storage() -> Storage:
    return storages["images"]


def blob_put(data: bytes) -> str:
    """Store bytes under their SHA-256 (idempotent) and return the hash."""
    digest = hashlib.sha256(data).hexdigest()
    storage = image_storage()
    name = storage_name_for(digest)
    if not storage.exists(name):
        saved = storage.save(name, ContentFile(data))
        if saved != name:  # a concurrent writer stored the same blob first
            storage.delete(saved)
    return digest


def blob_read(sha256: str) -> bytes:
    with image_storage().open(storage_name_for(sha256), "rb") as handle:
        return handle.read()
