"""Settings built from the environment: the image store (a folder, or S3-compatible object storage
through django-storages) and the worker's pixel source. Each case is a fresh process, as settings
are read once at start-up. No S3 server is reached: these check the configuration only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.core.files.storage import storages
store = storages["images"]
seen = {"class": type(store).__module__ + "." + type(store).__name__, "boto3": "boto3" in sys.modules}
if hasattr(store, "bucket_name"):
    client = store.connection.meta.client  # builds the boto3 client; sends nothing
    seen |= {
        "bucket": store.bucket_name, "location": store.location, "access_key": store.access_key,
        "secret_key": store.secret_key, "file_overwrite": store.file_overwrite,
        "default_acl": store.default_acl, "endpoint": client.meta.endpoint_url,
        "region": client.meta.region_name,
        "addressing_style": client.meta.config.s3.get("addressing_style") if client.meta.config.s3 else None,
    }
seen["pixel_source"] = settings.MEDPORTAL_PIXEL_SOURCE
print(json.dumps(seen))
"""


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    ours = ("AWS_", "MEDPORTAL_S3_", "MEDPORTAL_IMAGE_STORAGE", "MEDPORTAL_PIXEL_", "MEDPORTAL_PORTAL_URL")
    clean = {k: v for k, v in os.environ.items() if not k.startswith((*ours, "MEDPORTAL_SERVICE_TOKEN"))}
    clean |= {"DJANGO_SETTINGS_MODULE": "medportal.settings", "MEDPORTAL_DATA_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def probe(tmp_path: Path, **env: str) -> dict:
    result = run(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_default_image_store_is_a_folder_and_needs_no_boto3(tmp_path):
    seen = probe(tmp_path)
    assert seen["class"] == "django.core.files.storage.filesystem.FileSystemStorage"
    assert seen["boto3"] is False
    assert seen["pixel_source"] == "storage"


def test_s3_settings_configure_django_storages_for_the_image_store(tmp_path):
    secret = tmp_path / "s3-secret"
    secret.write_text("a-secret-from-a-file\n")

    seen = probe(
        tmp_path,
        MEDPORTAL_IMAGE_STORAGE="s3",
        MEDPORTAL_S3_BUCKET="medportal-images",
        MEDPORTAL_S3_ENDPOINT_URL="https://minio.hospital.example:9000",
        MEDPORTAL_S3_REGION="eu-central-1",
        MEDPORTAL_S3_ADDRESSING_STYLE="path",
        MEDPORTAL_S3_ACCESS_KEY_ID="medportal",
        MEDPORTAL_S3_SECRET_ACCESS_KEY_FILE=str(secret),
    )

    assert seen["class"] == "storages.backends.s3.S3Storage"
    assert seen["bucket"] == "medportal-images" and seen["location"] == "images"
    assert seen["endpoint"] == "https://minio.hospital.example:9000"
    assert seen["region"] == "eu-central-1" and seen["addressing_style"] == "path"
    assert seen["access_key"] == "medportal" and seen["secret_key"] == "a-secret-from-a-file"
    assert seen["file_overwrite"] is False and seen["default_acl"] is None


def test_s3_without_keys_leaves_credentials_to_boto3(tmp_path):
    seen = probe(
        tmp_path, MEDPORTAL_IMAGE_STORAGE="s3", MEDPORTAL_S3_BUCKET="b", MEDPORTAL_S3_REGION="us-east-1"
    )
    assert seen["access_key"] is None and seen["secret_key"] is None  # instance role, ~/.aws, AWS_*
    assert seen["endpoint"].startswith("https://s3.") and seen["endpoint"].endswith(".amazonaws.com")


def test_bad_storage_settings_stop_start_up_with_the_reason(tmp_path):
    assert "needs MEDPORTAL_S3_BUCKET" in run(tmp_path, MEDPORTAL_IMAGE_STORAGE="s3").stderr
    assert "must be filesystem or s3, not 'gcs'" in run(tmp_path, MEDPORTAL_IMAGE_STORAGE="gcs").stderr


def test_the_wado_pixel_source_needs_the_portal_and_a_token(tmp_path):
    missing = run(tmp_path, MEDPORTAL_PIXEL_SOURCE="wado", MEDPORTAL_PORTAL_URL="http://web:8000")
    assert missing.returncode != 0
    assert "MEDPORTAL_PIXEL_SOURCE=wado needs MEDPORTAL_PORTAL_URL" in missing.stderr
    assert "must be storage or wado, not 'nfs'" in run(tmp_path, MEDPORTAL_PIXEL_SOURCE="nfs").stderr
    schemeless = run(
        tmp_path, MEDPORTAL_PIXEL_SOURCE="wado", MEDPORTAL_PORTAL_URL="web:8000", MEDPORTAL_SERVICE_TOKEN="k"
    )
    assert "MEDPORTAL_PORTAL_URL must start with https://" in schemeless.stderr
    seen = probe(
        tmp_path,
        MEDPORTAL_PIXEL_SOURCE="wado",
        MEDPORTAL_PORTAL_URL="http://web:8000/",
        MEDPORTAL_SERVICE_TOKEN="k",
    )
    assert seen["pixel_source"] == "wado"
