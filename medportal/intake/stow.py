"""STOW-RS (PS3.18 10.5): instances stored over DICOMweb go in like any upload.

Each part of the multipart/related request is parsed once (``parse_file``) and handed, parsed,
to ``studies_receive``, so it is validated, stored and audited by the one ingest path and a new
study gets its report (and draft) as an uploaded one does. The request is read part by part and
ingested in batches, so a whole study is never in memory at once. An instance whose SOP Instance
UID is stored already with other content fails with Failure Reason 0x0111 (Duplicate SOP
Instance) and the reason; the same instance again is stored (idempotent).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import pydicom
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from medportal.access.roles import CAN_UPLOAD
from medportal.accounts.api_access import ApiError, api_endpoint
from medportal.audit.models import Action, EventType
from medportal.imaging import dicomweb_json as dj
from medportal.imaging.auditing import study_audit
from medportal.imaging.dicomweb import url_for
from medportal.imaging.dicomweb_query import UrlFor
from medportal.imaging.ingest import IncomingFile, IngestError, parse_file, uid_acceptable
from medportal.imaging.models import Study
from medportal.imaging.multipart import MultipartError, Part, media_type, parts_read
from medportal.intake.receive import studies_receive
from medportal.reporting.services.drafts import study_open_report

# Ingested together in one transaction; a batch is bounded so memory is too.
BATCH_FILES = 200
BATCH_BYTES = 256 * 1024 * 1024


@dataclass
class _Received:
    label: str
    incoming: IncomingFile
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_uid: str = ""
    series_uid: str = ""
    reason_code: int = dj.CANNOT_UNDERSTAND  # if ingest refuses it without a code of ours


@dataclass
class StoreOutcome:
    stored: list[dj.StoredPart] = field(default_factory=list)
    failed: list[dj.FailedPart] = field(default_factory=list)
    studies: dict[str, Study] = field(default_factory=dict)  # by Study Instance UID
    instances_per_study: dict[str, int] = field(default_factory=dict)
    new_studies: set[str] = field(default_factory=set)  # created by this request
    first_images: set[int] = field(default_factory=set)  # studies to draft (by pk): see IngestResult


_UIDS = ["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"]


def _identify(data: bytes) -> list[str]:
    """The UIDs of ``_UIDS`` of a refused part, for the response, read leniently; blanks when
    unreadable or not a valid UID (a NUL byte must not reach a database query)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=_UIDS)
        # Values convert lazily: a corrupt element fails here, not at dcmread.
        values = [str(ds.get(keyword, "") or "").strip() for keyword in _UIDS]
        return [value if uid_acceptable(value) else "" for value in values]
    except Exception:  # ingest says why the file is unreadable
        return [""] * len(_UIDS)


def _received(part: Part, index: int, *, target_study: str | None) -> _Received:
    label = f"STOW-RS part {index}"
    kind, _ = media_type(part.content_type or "application/dicom")

    def refused(reason: str, code: int) -> _Received:
        return _Received(label, IncomingFile(label, b"", refusal=reason), reason_code=code)

    if index > settings.MAX_UPLOAD_FILES:
        return refused(f"more than {settings.MAX_UPLOAD_FILES} instances in one request", dj.OUT_OF_RESOURCES)
    if part.truncated:
        return refused("the request ended inside this part", dj.CANNOT_UNDERSTAND)
    if part.oversized:
        return refused(
            f"the file is {part.size:,} bytes; the limit is {settings.MAX_UPLOAD_FILE_BYTES:,} bytes",
            dj.OUT_OF_RESOURCES,
        )
    if kind != "application/dicom":
        return refused(f"the part is {kind}, not application/dicom", dj.CANNOT_UNDERSTAND)
    if part.data[128:132] != b"DICM":
        # Uploads may be PNG or JPEG; over DICOMweb only DICOM Part-10 files are taken.
        return refused("not a DICOM Part-10 file (no DICM marker)", dj.CANNOT_UNDERSTAND)
    try:  # parsed here once: ingest takes the parsed file as it is
        parsed = parse_file(IncomingFile(label, part.data))
    except IngestError as exc:
        received = _Received(label, IncomingFile(label, b"", refusal=str(exc)), *_identify(part.data))
        received.reason_code = _reason_code(str(exc))
        return received
    received = _Received(
        label,
        IncomingFile(label, part.data, parsed=parsed),
        parsed.instance["sop_class_uid"],
        parsed.sop_instance_uid,
        parsed.study["study_uid"],
        parsed.series["series_uid"],
    )
    if target_study and received.study_uid != target_study:
        received.incoming = IncomingFile(
            label, b"", refusal=f"the instance belongs to study {received.study_uid}, not {target_study}"
        )
        received.reason_code = dj.DOES_NOT_MATCH
    return received


def _reason_code(reason: str) -> int:
    if reason.startswith("the file is") and "limit" in reason:
        return dj.OUT_OF_RESOURCES
    return dj.CANNOT_UNDERSTAND


def _ingest(
    batch: list[_Received], *, uploader, request: HttpRequest | None, outcome: StoreOutcome, url: UrlFor
) -> None:
    uids = {received.study_uid for received in batch if received.study_uid}
    outcome.new_studies |= uids - set(
        Study.objects.filter(study_uid__in=uids).values_list("study_uid", flat=True)
    )
    result, _ = studies_receive(
        files=[received.incoming for received in batch],
        uploader=uploader,
        request=request,
        source="dicomweb",
        unpack_archives=False,
        auto_draft=False,  # drafted once every batch is in, not from the first batch's slices
    )
    rejections = {rejection.name: rejection for rejection in result.rejected}
    outcome.first_images |= result.first_images
    for study in result.studies:
        outcome.studies[study.study_uid] = study
    for received in batch:
        if received.label in rejections:
            rejection = rejections[received.label]
            code = received.reason_code
            if rejection.conflict:
                code = dj.DUPLICATE_SOP_INSTANCE
            elif not received.incoming.refusal:
                code = _reason_code(rejection.reason)
            outcome.failed.append(
                dj.FailedPart(received.sop_class_uid, received.sop_instance_uid, code, rejection.reason)
            )
            continue
        outcome.stored.append(
            dj.StoredPart(
                received.sop_class_uid,
                received.sop_instance_uid,
                url(study=received.study_uid, series=received.series_uid, instance=received.sop_instance_uid),
            )
        )
        per_study = outcome.instances_per_study
        per_study[received.study_uid] = per_study.get(received.study_uid, 0) + 1


def instances_store(
    *,
    parts: Iterable[Part],
    uploader,
    target_study: str | None,
    url: UrlFor,
    request: HttpRequest | None,
    batch_files: int = BATCH_FILES,
) -> StoreOutcome:
    """Ingest every part; what was stored and what failed (with why), per instance.

    A study this request created is drafted (when drafts are automatic) after its last batch.
    """
    outcome = StoreOutcome()
    batch: list[_Received] = []
    batch_bytes = 0
    index = 0
    try:
        for index, part in enumerate(parts, 1):
            batch.append(_received(part, index, target_study=target_study))
            batch_bytes += len(part.data)
            if len(batch) >= min(batch_files, settings.MAX_UPLOAD_FILES) or batch_bytes >= BATCH_BYTES:
                _ingest(batch, uploader=uploader, request=request, outcome=outcome, url=url)
                batch, batch_bytes = [], 0
    except MultipartError as exc:
        if index == 0:
            raise
        outcome.failed.append(
            dj.FailedPart("", "", dj.CANNOT_UNDERSTAND, f"the body is malformed after part {index}: {exc}")
        )
    if batch:
        _ingest(batch, uploader=uploader, request=request, outcome=outcome, url=url)
    for study_uid in sorted(outcome.studies):
        study = outcome.studies[study_uid]
        if study_uid in outcome.new_studies or study.pk in outcome.first_images:
            study_open_report(
                study=study,
                user=uploader,
                auto_draft=settings.MEDPORTAL_AUTO_DRAFT and study.pk in outcome.first_images,
                request=request,
            )
    for study_uid, count in outcome.instances_per_study.items():
        study = outcome.studies.get(study_uid)
        if study is None:  # a header read here differently than ingest read it; ingest audited it
            continue
        study_audit(
            study,
            "Instances stored (STOW-RS)",
            event_type=EventType.INSTANCES_STORED,
            action=Action.CREATE,
            request=request,
            user=uploader,
            detail={"service": "STOW-RS", "instances": count},
        )
    return outcome


@api_endpoint(methods=("POST",), roles=CAN_UPLOAD)
def studies_store(request: HttpRequest, study: str | None = None) -> HttpResponse:
    """POST multipart/related; type="application/dicom": store each part; a Store Instances Response."""
    kind, params = media_type(request.META.get("CONTENT_TYPE", ""))
    if kind != "multipart/related" or params.get("type", "").lower() != "application/dicom":
        raise ApiError(415, 'Send multipart/related; type="application/dicom" (one DICOM file per part).')
    if not params.get("boundary"):
        raise ApiError(400, "The Content-Type has no boundary.")
    url = url_for(request)
    try:
        outcome = instances_store(
            parts=parts_read(request, params["boundary"], max_part_bytes=settings.MAX_UPLOAD_FILE_BYTES),
            uploader=request.user,
            target_study=study,
            url=url,
            request=request,
        )
    except MultipartError as exc:
        raise ApiError(400, f"The body is not multipart/related: {exc}") from None
    if not outcome.stored and not outcome.failed:
        raise ApiError(400, "The request holds no instances.")
    studies = list(outcome.instances_per_study)
    target = study or (studies[0] if len(studies) == 1 else "")
    body = dj.store_response_json(
        retrieve_url=url(study=target) if target else "", stored=outcome.stored, failed=outcome.failed
    )
    # PS3.18 10.5.3: all stored, some stored, none stored.
    status = 200 if not outcome.failed else 202 if outcome.stored else 409
    return HttpResponse(json.dumps(body), content_type="application/dicom+json", status=status)
