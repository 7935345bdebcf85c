"""Where the worker gets an instance's file: the one place it reads image bytes.

``storage`` (default): the image store through Django's storage API (``storage.open``, never a
path), so a volume the web shares or S3-compatible object storage both work.

``wado``: the portal's own WADO-RS (``GET /dicomweb/studies/{s}/series/{se}/instances/{i}``)
with a service account's token, for a worker on a host that shares neither disk nor bucket
with the web. The portal audits every fetch as instance access by that account. The file comes
as stored (``transfer-syntax=*``), so its SHA-256 must be the one the database records.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import urllib.error
import urllib.request
from http.client import HTTPException

import pydicom
from django.conf import settings
from django.urls import reverse

from inference_worker.slice_scan import ScannedHeader, header_scan
from medportal.imaging.models import Instance, storage_name_for
from medportal.imaging.multipart import MultipartError, media_type, parts_read
from medportal.imaging.storage import blob_read, image_storage

ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
# Attempts for failures that may pass (the portal unreachable or answering 5xx); a refusal
# (4xx) is final at once.
ATTEMPTS = 3
RETRY_PAUSE_S = 1.0


class PixelSourceError(Exception):
    """The instance's file could not be had; the message says why (it becomes the draft's reason)."""


class _Transient(PixelSourceError):
    pass


def instance_bytes(instance: Instance) -> bytes:
    """The stored file of ``instance``, from the source MEDPORTAL_PIXEL_SOURCE names."""
    if settings.MEDPORTAL_PIXEL_SOURCE == "wado":
        return wado_fetch(instance)
    return blob_read(instance.sha256)


def instance_header(instance: Instance, tags: list[str] | None = None) -> pydicom.Dataset:
    """The DICOM header of ``instance``, without its pixel data (only ``tags`` of it, when
    given): from the image store only the bytes before the pixels are read (a volume is
    ordered by 300 headers, not 300 files); through WADO-RS the whole file comes, as the
    portal sends only whole instances."""
    if settings.MEDPORTAL_PIXEL_SOURCE == "wado":
        return pydicom.dcmread(io.BytesIO(wado_fetch(instance)), stop_before_pixels=True, specific_tags=tags)
    with image_storage().open(storage_name_for(instance.sha256), "rb") as handle:
        return pydicom.dcmread(handle, stop_before_pixels=True, specific_tags=tags)


def instance_scan(instance: Instance) -> ScannedHeader | None:
    """The values a volume is ordered by, scanned from the stored file's first bytes without
    pydicom; None where the file is not the plain case (``slice_scan``) or the source is WADO-RS
    (which sends whole files only: the pydicom header costs nothing more there)."""
    if settings.MEDPORTAL_PIXEL_SOURCE == "wado":
        return None
    with image_storage().open(storage_name_for(instance.sha256), "rb") as handle:
        return header_scan(handle)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would carry the token to wherever it points; treat it as an answer instead.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def instance_url(instance: Instance) -> str:
    series = instance.series
    path = reverse(
        "dicomweb-instance", args=[series.study.study_uid, series.series_uid, instance.sop_instance_uid]
    )
    return settings.MEDPORTAL_PORTAL_URL + path


def wado_fetch(instance: Instance) -> bytes:
    """The instance's file from the portal's WADO-RS, checked against its recorded SHA-256."""
    if instance.content_type != Instance.DICOM:
        raise PixelSourceError(
            f"instance {instance.sop_instance_uid} is a {instance.get_content_type_display()} image, and "
            "WADO-RS serves DICOM only: a worker with MEDPORTAL_PIXEL_SOURCE=wado cannot draft it "
            "(use the storage source: a shared volume or S3)"
        )
    url = instance_url(instance)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            data = _fetch_once(url, instance)
            break
        except _Transient:
            if attempt == ATTEMPTS:
                raise
            time.sleep(RETRY_PAUSE_S * attempt)
    if hashlib.sha256(data).hexdigest() != instance.sha256:
        raise PixelSourceError(
            f"the portal at {settings.MEDPORTAL_PORTAL_URL} sent instance {instance.sop_instance_uid} "
            "with other bytes than this database records (SHA-256 differs): is MEDPORTAL_PORTAL_URL "
            "the portal of this database?"
        )
    return data


def _fetch_once(url: str, instance: Instance) -> bytes:
    portal = settings.MEDPORTAL_PORTAL_URL
    request = urllib.request.Request(
        url, headers={"Accept": ACCEPT, "Authorization": f"Token {settings.MEDPORTAL_SERVICE_TOKEN}"}
    )
    try:
        with _opener.open(request, timeout=settings.MEDPORTAL_PIXEL_FETCH_TIMEOUT_S) as response:
            return _single_part(response, instance)
    except urllib.error.HTTPError as exc:
        raise _refusal(exc, portal, instance) from None
    except urllib.error.URLError as exc:
        raise _Transient(f"could not reach the portal at {portal} for the image: {exc.reason}") from None
    except TimeoutError:
        raise _Transient(
            f"the portal at {portal} did not answer within {settings.MEDPORTAL_PIXEL_FETCH_TIMEOUT_S} s "
            "while sending the image (MEDPORTAL_PIXEL_FETCH_TIMEOUT_S)"
        ) from None
    except (OSError, HTTPException) as exc:
        raise _Transient(
            f"the connection to the portal at {portal} broke while sending the image: {exc}"
        ) from None


def _single_part(response, instance: Instance) -> bytes:
    portal = settings.MEDPORTAL_PORTAL_URL
    kind, params = media_type(response.headers.get("Content-Type", ""))
    if kind != "multipart/related" or not params.get("boundary"):
        raise PixelSourceError(f"the portal at {portal} answered with {kind or 'no content type'}, not DICOM")
    try:
        parts = list(parts_read(response, params["boundary"], max_part_bytes=settings.MAX_UPLOAD_FILE_BYTES))
    except MultipartError as exc:
        raise _Transient(f"the portal at {portal} sent an unreadable answer: {exc}") from None
    if len(parts) != 1 or parts[0].oversized or parts[0].truncated:
        raise _Transient(
            f"the portal at {portal} sent {len(parts)} part(s) for instance {instance.sop_instance_uid}, "
            "not one whole file"
        )
    return parts[0].data


def _refusal(exc: urllib.error.HTTPError, portal: str, instance: Instance) -> PixelSourceError:
    try:
        said = json.loads(exc.read(4096) or b"{}").get("error", "")
    except (ValueError, AttributeError, OSError):
        said = ""
    said = f' ("{said}")' if said else ""
    if exc.code == 401:
        return PixelSourceError(
            f"the portal at {portal} refused the worker's service token (401){said}: "
            "check MEDPORTAL_SERVICE_TOKEN (manage.py medportal_service_token --name <worker> issues one)"
        )
    if exc.code == 403:
        return PixelSourceError(
            f"the portal at {portal} refused the image to the worker's account (403){said}: "
            "its token must belong to a service account (manage.py medportal_service_token)"
        )
    if exc.code == 404:
        return PixelSourceError(f"the portal at {portal} has no instance {instance.sop_instance_uid} (404)")
    if 300 <= exc.code < 400:
        return PixelSourceError(
            f"the portal at {portal} redirects ({exc.code}) to {exc.headers.get('Location', '?')}: "
            "set MEDPORTAL_PORTAL_URL to the address it redirects to"
        )
    message = f"the portal at {portal} answered {exc.code} {exc.reason} for the image{said}"
    return _Transient(message) if exc.code >= 500 else PixelSourceError(message)
