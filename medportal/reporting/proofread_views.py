"""The proofread's own routes: recording a "fix" choice (the page) and reading the findings (API)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from medportal.access.guards import role_required
from medportal.access.roles import CAN_SIGN_REPORTS
from medportal.accounts.api_access import ApiError, api_endpoint
from medportal.audit.models import Action
from medportal.reporting.auditing import report_audit
from medportal.reporting.models import Report
from medportal.reporting.proofread import RULE_CODES, proofread_fix_record, report_proofread


def _report(report_id: int) -> Report:
    return get_object_or_404(Report.objects.select_related("study__patient"), pk=report_id)


@role_required(*CAN_SIGN_REPORTS)
@require_POST
def report_proofread_fix(request: HttpRequest, report_id: int) -> HttpResponse:
    """The radiologist pressed "fix" beside a finding: recorded; the page takes them to the field."""
    report = _report(report_id)
    rule = request.POST.get("rule", "")
    if rule not in RULE_CODES:
        return HttpResponse("There is no such proofread rule.", status=400, content_type="text/plain")
    proofread_fix_record(report=report, user=request.user, rule=rule, request=request)
    return HttpResponse(status=204)


@api_endpoint(methods=("GET",), roles=CAN_SIGN_REPORTS)
def api_report_proofread(request: HttpRequest, report_id: int) -> JsonResponse:
    """GET: what the proofread finds in the saved text now (the sign request runs it again)."""
    report = _report(report_id)
    report_audit(report, "Proofread read (API)", action=Action.READ, request=request)
    if not report.is_signable:
        raise ApiError(409, "Only a report waiting for its signature is proofread.")
    issues = report_proofread(report=report)
    return JsonResponse(
        {"proofread": [{"rule": i.code, "message": i.message, "field": i.field} for i in issues]}
    )
