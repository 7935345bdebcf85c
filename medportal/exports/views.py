"""Downloads of a signed report (pages and the token API) and "Send to PACS". Thin: the
services check, build and audit."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from medportal.access.guards import role_required
from medportal.access.roles import CAN_EXPORT
from medportal.accounts.api_access import ApiError, api_endpoint
from medportal.exports.services import Export, ExportRefused, report_export, report_send_to_pacs
from medportal.reporting.models import Report


def _report(report_id: int) -> Report:
    return get_object_or_404(Report.objects.select_related("study__patient"), pk=report_id)


def _download(export: Export) -> HttpResponse:
    response = HttpResponse(export.data, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _refused(request: HttpRequest, report: Report, exc: ExportRefused, title: str) -> HttpResponse:
    context = {"report": report, "study": report.study, "reason": str(exc), "title": title}
    return render(request, "exports/refused.html", context, status=exc.status)


def _page_export(fmt: str):
    @role_required(*CAN_EXPORT)
    @require_GET
    def view(request: HttpRequest, report_id: int) -> HttpResponse:
        report = _report(report_id)
        try:
            return _download(report_export(report=report, fmt=fmt, user=request.user, request=request))
        except ExportRefused as exc:
            return _refused(request, report, exc, "Export refused")

    view.__name__ = f"report_export_{fmt}"
    return view


report_export_pdf = _page_export("pdf")
report_export_fhir = _page_export("fhir")
report_export_sr = _page_export("sr")


@role_required(*CAN_EXPORT)
@require_POST
def report_send_pacs(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report(report_id)
    try:
        sent = report_send_to_pacs(report=report, user=request.user, request=request)
    except ExportRefused as exc:
        return _refused(request, report, exc, "Not sent to the PACS")
    messages.success(
        request, f"Report sent to the PACS ({sent.destination}) as DICOM SR {sent.sop_instance_uid}."
    )
    return redirect("study-detail", study_id=report.study_id)


def _api_export(fmt: str):
    @api_endpoint(methods=("GET",), roles=CAN_EXPORT)
    def view(request: HttpRequest, report_id: int) -> HttpResponse:
        report = _report(report_id)
        try:
            return _download(report_export(report=report, fmt=fmt, user=request.user, request=request))
        except ExportRefused as exc:
            raise ApiError(exc.status, str(exc)) from None

    view.__name__ = f"api_report_export_{fmt}"
    return view


api_report_fhir = _api_export("fhir")
api_report_pdf = _api_export("pdf")
api_report_sr = _api_export("sr")
