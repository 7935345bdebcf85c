"""Pages: worklist, upload, study (images + report), and the report actions."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from medportal.accounts.access import role_required
from medportal.accounts.roles import (
    CAN_EDIT_REPORTS,
    CAN_REQUEST_DRAFT,
    CAN_SIGN_REPORTS,
    CAN_UPLOAD,
    CAN_VIEW_STUDIES,
)
from medportal.audit.models import Action, EventType
from medportal.audit.services import audit_record
from medportal.imaging.ingest import IncomingFile, IngestError
from medportal.imaging.models import Instance, Study
from medportal.imaging.samples import sample_files
from medportal.imaging.services import study_set_indication
from medportal.reporting import services
from medportal.reporting.forms import IndicationForm, ReportEditForm, SignForm, UploadForm
from medportal.reporting.intake import studies_receive
from medportal.reporting.models import Report
from medportal.reporting.selectors import report_stream_path


@role_required(*CAN_VIEW_STUDIES)
def worklist(request: HttpRequest) -> HttpResponse:
    studies = Study.objects.select_related("patient", "report").order_by("-received_at")[:200]
    audit_record(
        event_type=EventType.QUERY, action=Action.READ, description="Worklist viewed", request=request
    )
    template = "reporting/worklist.html#rows" if request.htmx else "reporting/worklist.html"
    return render(request, template, {"studies": studies})


@role_required(*CAN_UPLOAD)
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    # Bound on every POST, even an empty one, so that an empty POST gets the form's errors.
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    result = reports = None
    error = None
    if request.method == "POST" and form.is_valid():
        files = [IncomingFile(name=f.name, data=f.read()) for f in form.cleaned_data["files"]]
        try:
            result, reports = studies_receive(
                files=files,
                uploader=request.user,
                indication=form.cleaned_data["indication"],
                image_modality=form.cleaned_data["image_modality"] or "DX",
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
    template = "reporting/upload.html#outcome" if request.htmx else "reporting/upload.html"
    return render(request, template, context, status=status)


@role_required(*CAN_UPLOAD)
@require_POST
def sample_load(request: HttpRequest) -> HttpResponse:
    _, reports = studies_receive(
        files=sample_files(), uploader=request.user, request=request, source="sample"
    )
    messages.info(request, "Sample study loaded from the DICOM files that ship with pydicom.")
    return redirect("study-detail", study_id=reports[0].study_id)


def _report_context(request: HttpRequest, report: Report, **extra) -> dict:
    return {
        "report": report,
        "study": report.study,
        "edit_form": extra.pop("edit_form", None)
        or ReportEditForm(
            initial={"findings": report.findings, "impression": report.impression, "version": report.version}
        ),
        "sign_form": extra.pop("sign_form", None) or SignForm(initial={"version": report.version}),
        "stream_url": report_stream_path(report.pk),
        **extra,
    }


@role_required(*CAN_VIEW_STUDIES)
def study_detail(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_object_or_404(Study.objects.select_related("patient"), pk=study_id)
    report = services.report_for_study(study=study)
    instances = Instance.objects.filter(series__study=study).select_related("series")
    audit_record(
        event_type=EventType.PATIENT_RECORD,
        action=Action.READ,
        description="Study viewed",
        request=request,
        patient_id=study.patient.patient_id,
        study_uid=study.study_uid,
        accession_number=study.accession_number,
        object_type="study",
        object_id=study.pk,
    )
    context = _report_context(
        request,
        report,
        instances=instances,
        indication_form=IndicationForm(initial={"indication": study.indication}),
    )
    return render(request, "reporting/study_detail.html", context)


def _report_panel(request: HttpRequest, report: Report, status: int = 200, **extra) -> HttpResponse:
    if not request.htmx:
        for text in extra.get("errors", []):
            messages.error(request, text)
        return redirect("study-detail", study_id=report.study_id)
    report.refresh_from_db()
    return render(
        request,
        "reporting/study_detail.html#report-panel",
        _report_context(request, report, **extra),
        status=status,
    )


def _report_or_404(report_id: int) -> Report:
    return get_object_or_404(Report.objects.select_related("study__patient"), pk=report_id)


@role_required(*CAN_VIEW_STUDIES)
def report_panel(request: HttpRequest, report_id: int) -> HttpResponse:
    """The report panel alone, for htmx to refresh when a draft ends."""
    report = _report_or_404(report_id)
    return render(request, "reporting/study_detail.html#report-panel", _report_context(request, report))


@role_required(*CAN_REQUEST_DRAFT)
@require_POST
def study_indication(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_object_or_404(Study.objects.select_related("patient"), pk=study_id)
    form = IndicationForm(request.POST)
    if form.is_valid():
        study_set_indication(
            study=study, indication=form.cleaned_data["indication"], user=request.user, request=request
        )
        messages.success(request, "Clinical indication saved; it goes into the next draft's prompt.")
    else:
        messages.error(request, "; ".join(e for errors in form.errors.values() for e in errors))
    return redirect("study-detail", study_id=study.pk)


@role_required(*CAN_REQUEST_DRAFT)
@require_POST
def report_draft(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report_or_404(report_id)
    try:
        services.draft_request(report=report, user=request.user, request=request)
    except services.ReportError as exc:
        return _report_panel(request, report, status=409, errors=[str(exc)])
    return _report_panel(request, report)


@role_required(*CAN_EDIT_REPORTS)
@require_POST
def report_save(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report_or_404(report_id)
    form = ReportEditForm(request.POST)
    if not form.is_valid():
        return _report_panel(
            request, report, status=400, errors=["The form was incomplete; reload the page."]
        )
    try:
        services.report_save(
            report=report,
            user=request.user,
            findings=form.cleaned_data["findings"],
            impression=form.cleaned_data["impression"],
            expected_version=form.cleaned_data["version"],
            request=request,
        )
    except services.ReportConflict as exc:
        return _report_panel(request, exc.report, status=409, errors=[str(exc)])
    except services.ReportError as exc:
        return _report_panel(request, report, status=409, errors=[str(exc)])
    if not request.htmx:
        messages.success(request, "Saved.")
    return _report_panel(request, report, saved=True)


@role_required(*CAN_SIGN_REPORTS)
@require_POST
def report_sign(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report_or_404(report_id)
    form = SignForm(request.POST)
    if not form.is_valid():
        return _report_panel(request, report, status=400, errors=["Enter your password to sign."])
    try:
        services.report_sign(
            report=report,
            user=request.user,
            password=form.cleaned_data["password"],
            expected_version=form.cleaned_data["version"],
            request=request,
        )
    except services.ReportError as exc:
        return _report_panel(request, report, status=409, errors=[str(exc)])
    if not request.htmx:
        messages.success(request, "Report signed.")
    return _report_panel(request, report)
