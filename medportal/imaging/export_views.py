"""The de-identified study export (PS3.15 Annex E): a zip download for the roles in CAN_EXPORT."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect

from medportal.access.guards import role_required
from medportal.access.roles import CAN_EXPORT
from medportal.imaging.deidentify import DeidentificationRefused, DeidOptions, study_deidentified_zip
from medportal.imaging.models import Study


@role_required(*CAN_EXPORT)
def study_export_deidentified(request: HttpRequest, study_id: int) -> HttpResponse:
    """The study's DICOM instances, de-identified with all three options, as a zip."""
    study = get_object_or_404(Study.objects.select_related("patient"), pk=study_id)
    try:
        data = study_deidentified_zip(study=study, user=request.user, options=DeidOptions(), request=request)
    except DeidentificationRefused as exc:
        messages.error(request, f"De-identified export refused: {exc}")
        return redirect("study-detail", study_id=study.pk)
    response = HttpResponse(data, content_type="application/zip")
    # No patient data in the file name: it ends up in download folders and browser history.
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-deidentified.zip"'
    response["Cache-Control"] = "no-store"
    return response
