"""Sending a report's DICOM SR to the PACS: DICOMweb STOW-RS or a DIMSE C-STORE.

The destination comes from the environment (settings ``MEDPORTAL_PACS_*``): a STOW-RS URL
(with an optional token) wins; else an AE title, host and port for C-STORE; else
there is no PACS. Every step is bounded by ``MEDPORTAL_PACS_TIMEOUT`` seconds.

The send runs in the web request, not on Celery: the only workers are the GPU workers,
whose queue holds the drafts, and one SR of a few kilobytes takes one round trip. The user
sees at once whether the PACS took it, and why not.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

from medportal.imaging.multipart import closing_bytes, new_boundary, part_bytes

# C-STORE statuses that mean "stored" (PS3.4 B.2.3: success, and the warnings).
_STORED = {0x0000, 0xB000, 0xB006, 0xB007}
# DICOM JSON tags of a STOW-RS response (PS3.18 10.5.3).
_FAILED_SOP_SEQUENCE = "00081198"
_FAILURE_REASON = "00081197"
_REFERENCED_SOP_SEQUENCE = "00081199"


class PacsError(Exception):
    """The PACS could not be reached, or it did not store the instance; the message says which."""


@dataclass(frozen=True)
class PacsDestination:
    stow_url: str = ""
    token: str = ""
    auth_scheme: str = "Bearer"
    ae_title: str = ""
    host: str = ""
    port: int = 0

    @property
    def kind(self) -> str:
        return "stow" if self.stow_url else "dimse"

    def __str__(self) -> str:
        # Shown to users and written to the audit trail: never the token.
        if self.stow_url:
            return f"DICOMweb STOW-RS {self.stow_url}"
        return f"DICOM AE {self.ae_title} at {self.host}:{self.port}"


def pacs_destination() -> PacsDestination | None:
    """The configured PACS, or None when there is none."""
    if settings.MEDPORTAL_PACS_STOW_URL:
        return PacsDestination(
            stow_url=settings.MEDPORTAL_PACS_STOW_URL,
            token=settings.MEDPORTAL_PACS_STOW_TOKEN,
            auth_scheme=settings.MEDPORTAL_PACS_STOW_AUTH_SCHEME,
        )
    if settings.MEDPORTAL_PACS_HOST:
        return PacsDestination(
            ae_title=settings.MEDPORTAL_PACS_AE,
            host=settings.MEDPORTAL_PACS_HOST,
            port=settings.MEDPORTAL_PACS_PORT,
        )
    return None


def pacs_send(*, destination: PacsDestination, dataset: Dataset, data: bytes) -> None:
    """Store one instance (``dataset``, ``data`` its Part-10 bytes) in the PACS; PacsError if not."""
    timeout = settings.MEDPORTAL_PACS_TIMEOUT
    if destination.kind == "stow":
        _stow(destination, data, timeout)
    else:
        _c_store(destination, dataset, timeout)


def _stow(destination: PacsDestination, data: bytes, timeout: float) -> None:
    boundary = new_boundary()
    body = part_bytes(data, "application/dicom", boundary) + closing_bytes(boundary)
    headers = {
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json",
    }
    if destination.token:
        headers["Authorization"] = f"{destination.auth_scheme} {destination.token}"
    request = urllib.request.Request(destination.stow_url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured URL)
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PacsError(f"The PACS ({destination}) could not be reached: {reason}") from None
    reasons = _stow_failures(answer)
    if status in (200, 202) and not reasons:
        return
    detail = "; ".join(reasons) or answer[:200].decode("utf-8", "replace").strip() or "no reason given"
    raise PacsError(f"The PACS ({destination}) did not store the report (HTTP {status}): {detail}")


def _stow_failures(answer: bytes) -> list[str]:
    """The failure reasons in a STOW-RS response body (DICOM JSON), if it has any."""
    try:
        body = json.loads(answer or b"{}")
        failed = body.get(_FAILED_SOP_SEQUENCE, {}).get("Value", [])
    except (ValueError, AttributeError):
        return []
    reasons = []
    for item in failed:
        code = (item.get(_FAILURE_REASON, {}).get("Value") or [None])[0]
        comment = (item.get("00000902", {}).get("Value") or [""])[0]  # ErrorComment, where sent
        text = f"failure reason 0x{code:04X}" if isinstance(code, int) else "failed"
        reasons.append(f"{text}{f' ({comment})' if comment else ''}")
    return reasons


def _c_store(destination: PacsDestination, dataset: Dataset, timeout: float) -> None:
    ae = AE(ae_title=settings.MEDPORTAL_DIMSE_AE_TITLE)
    ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context(dataset.SOPClassUID, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        why = "it rejected the association" if assoc.is_rejected else "no association could be made"
        raise PacsError(f"The PACS ({destination}) could not be reached: {why}.")
    try:
        if not assoc.accepted_contexts:
            raise PacsError(f"The PACS ({destination}) does not accept {dataset.SOPClassUID.name} objects.")
        status = assoc.send_c_store(dataset)
    finally:
        assoc.release()
    if not status or "Status" not in status:
        raise PacsError(f"The PACS ({destination}) did not answer the C-STORE in time.")
    if status.Status not in _STORED:
        comment = f" ({status.ErrorComment})" if "ErrorComment" in status else ""
        raise PacsError(
            f"The PACS ({destination}) refused the report: status 0x{status.Status:04X}{comment}."
        )
