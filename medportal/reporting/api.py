"""The automation API (JSON, token authentication). Same services and permissions as the UI."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse

from medportal.access.roles import (
    CAN_EDIT_REPORTS,
    CAN_REQUEST_DRAFT,
    CAN_SIGN_REPORTS,
    CAN_VIEW_STUDIES,
    has_role,
)
from medportal.accounts.api_access import ApiError, api_endpoint, api_json_body
from medportal.audit.models import Action
from medportal.imaging.models import Priority, Study
from medportal.reporting.auditing import report_audit
from medportal.reporting.freezing import signed_snapshot
from medportal.reporting.lifecycle import ReportError
from medportal.reporting.models import Report
from medportal.reporting.proofread import sign_gate
from medportal.reporting.provenance import report_provenance
from medportal.reporting.selectors import report_stream_path
from medportal.reporting.services import drafts, editing


def stream_url(request: HttpRequest, report: Report) -> str:
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}{report_stream_path(report.pk)}"


def report_json(request: HttpRequest, report: Report) -> dict:
    data = {
        "id": report.pk,
        "study_id": report.study_id,
        "status": report.status,
        "attempt": report.attempt,
        "draft_text": report.draft_text,
        "findings": report.findings,
        "impression": report.impression,
        "version": report.version,
        "failure_reason": report.failure_reason,
        "signed_by": None,
        "signed_at": None,
        "provenance": report_provenance(report),
        "url": request.build_absolute_uri(reverse("api-report", kwargs={"report_id": report.pk})),
        "stream_url": stream_url(request, report),
    }
    if report.is_signed:  # as frozen at the signature, like every other output
        frozen = signed_snapshot(report.pk)
        data |= {
            "findings": frozen.report.findings,
            "impression": frozen.report.impression,
            "signed_by": frozen.report.signed_by.get_username(),
            "signed_at": frozen.report.signed_at.isoformat(),
            "provenance": frozen.provenance,
        }
    return data


def study_json(request: HttpRequest, study: Study, report: Report) -> dict:
    data = {
        "id": study.pk,
        "study_uid": study.study_uid,
        "patient_id": study.patient.patient_id,
        "accession_number": study.accession_number,
        "modality": study.modality,
        "priority": Priority(study.priority).name.lower(),
        "description": study.description,
        "indication": study.indication,
        "instances": sum(series.instances.count() for series in study.series.all()),
        "report": report_json(request, report),
    }
    if report.is_signed:  # the study as the signed report read it
        frozen = signed_snapshot(report.pk)
        data |= {
            "patient_id": frozen.patient.patient_id,
            "accession_number": frozen.study.accession_number,
            "modality": frozen.study.modality,
            "description": frozen.study.description,
            "indication": frozen.study.indication,
            "instances": sum(s.instance_count for s in frozen.series),
        }
    return data


def _report(report_id: int) -> Report:
    return get_object_or_404(Report.objects.select_related("study__patient", "signed_by"), pk=report_id)


@api_endpoint(methods=("GET",), roles=CAN_VIEW_STUDIES)
def study_read(request: HttpRequest, study_id: int) -> JsonResponse:
    study = get_object_or_404(Study.objects.select_related("patient"), pk=study_id)
    report = drafts.report_for_study(study=study)
    report_audit(report, "Report read (API)", action=Action.READ, request=request)
    return JsonResponse(study_json(request, study, report))


@api_endpoint(methods=("GET", "PUT"), roles=CAN_VIEW_STUDIES)
def report_detail(request: HttpRequest, report_id: int) -> JsonResponse:
    """GET reads a report; PUT {findings, impression, version} saves an edit (radiologists)."""
    report = _report(report_id)
    if request.method == "GET":
        report_audit(report, "Report read (API)", action=Action.READ, request=request)
        return JsonResponse(report_json(request, report))
    if not has_role(request.user, *CAN_EDIT_REPORTS):
        raise ApiError(403, "Your role does not allow editing reports.")
    body = api_json_body(request)
    try:
        version = int(body["version"])
        findings, impression = str(body.get("findings", "")), str(body.get("impression", ""))
    except (KeyError, TypeError, ValueError):
        raise ApiError(400, "Send findings, impression and the version you edited.") from None
    try:
        report = editing.report_save(
            report=report,
            user=request.user,
            findings=findings,
            impression=impression,
            expected_version=version,
            request=request,
        )
    except editing.ReportConflict as exc:
        raise ApiError(409, str(exc), report=report_json(request, exc.report)) from None
    except ReportError as exc:
        raise ApiError(409, str(exc)) from None
    return JsonResponse(report_json(request, _report(report.pk)))


@api_endpoint(methods=("POST",), roles=CAN_REQUEST_DRAFT)
def report_draft(request: HttpRequest, report_id: int) -> JsonResponse:
    report = _report(report_id)
    try:
        report = drafts.draft_request(report=report, user=request.user, request=request)
    except ReportError as exc:
        raise ApiError(409, str(exc)) from None
    return JsonResponse(report_json(request, _report(report.pk)), status=202)


@api_endpoint(methods=("POST",), roles=CAN_SIGN_REPORTS)
def report_sign(request: HttpRequest, report_id: int) -> JsonResponse:
    """POST {password, otp?, version?}: sign after re-authenticating (otp: the TOTP code, when enrolled)."""
    report = _report(report_id)
    body = api_json_body(request)
    if not isinstance(body.get("password"), str):
        raise ApiError(400, "Send your password to sign.")
    version = body.get("version")
    try:
        version = int(version) if version is not None else None
    except (TypeError, ValueError):
        raise ApiError(400, "The version must be a whole number.") from None
    sign_anyway = body.get("sign_anyway") or []
    if not isinstance(sign_anyway, list):
        raise ApiError(400, "sign_anyway is a list of proofread rule codes.")
    # The proofread, once the password is right: its findings come back (409) unless each is
    # answered with "sign anyway". (A wrong password goes on to the sign-off's own refusal.)
    if (
        report.is_signable
        and request.user.check_password(body["password"])
        and (
            issues := sign_gate(
                report=report, user=request.user, sign_anyway=[str(c) for c in sign_anyway], request=request
            )
        )
    ):
        raise ApiError(
            409,
            "The proofread found something to check; fix it, or send its rule in sign_anyway.",
            proofread=[{"rule": i.code, "message": i.message, "field": i.field} for i in issues],
        )
    try:
        editing.report_sign(
            report=report,
            user=request.user,
            password=body["password"],
            otp_code=str(body.get("otp") or ""),
            expected_version=version,
            request=request,
        )
    except editing.ReauthenticationFailed as exc:
        raise ApiError(403, str(exc)) from None
    except editing.ReportConflict as exc:
        raise ApiError(409, str(exc), report=report_json(request, exc.report)) from None
    except ReportError as exc:
        raise ApiError(409, str(exc)) from None
    return JsonResponse(report_json(request, _report(report.pk)))
