"""The upload page and the sample study: thin views over ``studies_receive``."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from medportal.access.guards import role_required
from medportal.access.roles import CAN_UPLOAD
from medportal.imaging.ingest import IncomingFile, IngestError
from medportal.imaging.samples import sample_files
from medportal.intake.forms import UploadForm
from medportal.intake.receive import studies_receive


@role_required(*CAN_UPLOAD)
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    # Bound on every POST, even an empty one, so that an empty POST gets the form's errors.
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    result = reports = None
    error = None
    if request.method == "POST" and form.is_valid():
        files = [IncomingFile(name=f.name, data=f.read()) for f in form.uploaded_files()]
        try:
            result, reports = studies_receive(
                files=files,
                uploader=request.user,
                indication=form.cleaned_data["indication"],
                picture=form.cleaned_data["picture"],
                priority=form.cleaned_data["priority"],
                request=request,
            )
        except IngestError as exc:
            error = str(exc)
        if reports and not result.rejected and not request.htmx:
            return redirect("study-detail", study_id=reports[0].study_id)
    status = 400 if request.method == "POST" and (error or not form.is_valid() or not reports) else 200
    context = {
        "form": form,
        "result": result,
        "reports": reports,
        "error": error,
        "max_file_bytes": settings.MAX_UPLOAD_FILE_BYTES,
    }
    template = "intake/upload.html#outcome" if request.htmx else "intake/upload.html"
    return render(request, template, context, status=status)


@role_required(*CAN_UPLOAD)
@require_POST
def sample_load(request: HttpRequest) -> HttpResponse:
    result, reports = studies_receive(
        files=sample_files(), uploader=request.user, request=request, source="sample"
    )
    if result.stored:
        messages.info(request, "Sample study loaded from the DICOM files that ship with pydicom.")
    else:
        messages.info(request, "The sample study was already here: this is it, as it was.")
    return redirect("study-detail", study_id=reports[0].study_id)
