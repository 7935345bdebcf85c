"""The automation API's way in: ``POST /api/studies/`` (multipart files, token authentication)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from medportal.access.roles import CAN_UPLOAD
from medportal.accounts.api_access import ApiError, api_endpoint
from medportal.imaging.ingest import IncomingFile, IngestError
from medportal.imaging.models import Priority
from medportal.intake.pictures import PictureDetailsError, PictureFields, has_picture, picture_details
from medportal.intake.receive import studies_receive
from medportal.reporting.api import study_json


@api_endpoint(methods=("POST",), roles=CAN_UPLOAD)
def studies_create(request: HttpRequest) -> JsonResponse:
    """multipart/form-data: ``files`` (one or more), optional ``indication``, ``priority`` (stat,
    urgent, routine), ``auto_draft``. With a PNG or JPEG among the files also ``modality`` (CR, DX,
    CT, MR), ``body_part`` and ``patient_name`` (required), ``patient_id`` (the MRN; ``mrn`` too)
    and ``accession_number`` (see intake/pictures.py)."""
    uploads = request.FILES.getlist("files")
    files = [IncomingFile(name=f.name, data=f.read()) for f in uploads]
    picture = None
    if has_picture([(incoming.name, incoming.data[:8]) for incoming in files]):
        given = request.POST
        fields = PictureFields(
            modality=given.get("modality", ""),
            body_part=given.get("body_part", ""),
            patient_name=given.get("patient_name", ""),
            patient_id=given.get("patient_id", "") or given.get("mrn", ""),
            accession_number=given.get("accession_number", ""),
        )
        try:
            picture = picture_details(fields)
        except PictureDetailsError as exc:
            message = f"A PNG or JPEG needs what its header would say: {exc}"
            raise ApiError(400, message, fields=exc.errors) from None
    auto_draft = request.POST.get("auto_draft")
    priority = None
    if request.POST.get("priority"):
        priority = Priority.from_name(request.POST["priority"])
        if priority is None:
            raise ApiError(400, "priority must be one of: stat, urgent, routine.")
    try:
        result, reports = studies_receive(
            files=files,
            uploader=request.user,
            indication=request.POST.get("indication", "")[:4000],
            picture=picture,
            priority=priority,
            auto_draft=None if auto_draft is None else auto_draft.lower() in {"1", "true", "yes"},
            request=request,
            source="api",
        )
    except IngestError as exc:
        raise ApiError(400, str(exc)) from None
    rejected = [{"file": r.name, "reason": r.reason} for r in result.rejected]
    if not reports:
        raise ApiError(400, "No file was accepted.", rejected=rejected)
    return JsonResponse(
        {
            "studies": [study_json(request, report.study, report) for report in reports],
            "stored": result.stored,
            "duplicates": result.duplicates,
            "rejected": rejected,
        },
        status=201,
    )
