"""Pages of critical results: the study page's panel and its actions, the Critical results
list, and the acknowledgement link a clinician opens (no login: the signed link is the key)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from medportal.access.guards import role_required
from medportal.access.roles import CAN_COMMUNICATE_CRITICAL, CAN_VIEW_CRITICAL, CAN_VIEW_STUDIES
from medportal.audit.models import Action, EventType, Outcome
from medportal.audit.services import audit_record
from medportal.communication import critical as service
from medportal.communication.auditing import critical_audit
from medportal.communication.followups import followup_confirm as followup_confirm_service
from medportal.communication.forms import (
    AcknowledgeForm,
    CriticalMarkForm,
    CriticalNotifyForm,
    FollowUpForm,
    ReadBackForm,
)
from medportal.communication.lifecycle import UNACKNOWLEDGED, CommunicationError
from medportal.communication.models import CriticalResult, FollowUp, FollowUpStatus
from medportal.communication.selectors import communication_context
from medportal.reporting.auditing import report_audit
from medportal.reporting.models import Report


def _panel(request: HttpRequest, report: Report, *, status: int = 200, errors=(), **extra) -> HttpResponse:
    if errors:
        report_audit(
            report,
            "Critical result action refused",
            action=Action.UPDATE,
            request=request,
            outcome=Outcome.MINOR_FAILURE,
            detail={"reason": "; ".join(errors)[:300]},
        )
    if not request.htmx:
        for text in errors:
            messages.error(request, text)
        return redirect("study-detail", study_id=report.study_id)
    context = communication_context(report=report, user=request.user, errors=list(errors), **extra)
    return render(request, "communication/panel.html", context, status=status)


def _form_errors(form) -> list[str]:
    return [
        f"{form.fields[name].label if name in form.fields else ''}: {e}".lstrip(": ")
        for name, errs in form.errors.items()
        for e in errs
    ]


@role_required(*CAN_VIEW_STUDIES)
def communication_panel(request: HttpRequest, report_id: int) -> HttpResponse:
    report = get_object_or_404(Report.objects.select_related("study__patient"), pk=report_id)
    report_audit(report, "Critical results and follow-ups viewed", action=Action.READ, request=request)
    return _panel(request, report)


@role_required(*CAN_COMMUNICATE_CRITICAL)
@require_POST
def critical_mark(request: HttpRequest, report_id: int) -> HttpResponse:
    report = get_object_or_404(Report.objects.select_related("study__patient"), pk=report_id)
    form = CriticalMarkForm(request.POST)
    if not form.is_valid():
        return _panel(request, report, status=400, errors=_form_errors(form), mark_form=form)
    try:
        service.critical_mark(report=report, user=request.user, request=request, **form.cleaned_data)
    except CommunicationError as exc:
        return _panel(request, report, status=409, errors=[str(exc)])
    return _panel(request, report)


def _critical(critical_id: int) -> CriticalResult:
    return get_object_or_404(CriticalResult.objects.select_related("report__study__patient"), pk=critical_id)


@role_required(*CAN_COMMUNICATE_CRITICAL)
@require_POST
def critical_notify(request: HttpRequest, critical_id: int) -> HttpResponse:
    critical = _critical(critical_id)
    form = CriticalNotifyForm(request.POST)
    if not form.is_valid():
        return _panel(request, critical.report, status=400, errors=_form_errors(form))
    try:
        service.critical_notify(critical=critical, user=request.user, request=request, **form.cleaned_data)
    except CommunicationError as exc:
        return _panel(request, critical.report, status=409, errors=[str(exc)])
    return _panel(request, critical.report)


@role_required(*CAN_COMMUNICATE_CRITICAL)
@require_POST
def critical_read_back(request: HttpRequest, critical_id: int) -> HttpResponse:
    critical = _critical(critical_id)
    form = ReadBackForm(request.POST)
    form.is_valid()
    try:
        service.critical_read_back(
            critical=critical, user=request.user, name=form.cleaned_data.get("name", ""), request=request
        )
    except CommunicationError as exc:
        return _panel(request, critical.report, status=409, errors=[str(exc)])
    return _panel(request, critical.report)


@role_required(*CAN_VIEW_CRITICAL)
def critical_list(request: HttpRequest) -> HttpResponse:
    """Unacknowledged results first (escalated at the top), then the last acknowledged ones."""
    service.critical_escalate_overdue()
    base = CriticalResult.objects.select_related("report__study__patient", "created_by", "notified_by")
    # Escalated first, each group oldest first.
    waiting = sorted(
        base.filter(status__in=sorted(UNACKNOWLEDGED)), key=lambda c: (c.escalated_at is None, c.created_at)
    )
    done = base.exclude(status__in=sorted(UNACKNOWLEDGED)).order_by("-acknowledged_at")[:50]
    audit_record(
        event_type=EventType.QUERY,
        action=Action.READ,
        description="Critical results viewed",
        request=request,
        object_type="critical_result",
        detail={"waiting": len(waiting)},
    )
    return render(
        request,
        "communication/critical_list.html",
        {
            "waiting": [(c, service.critical_statement(c)) for c in waiting],
            "done": [(c, service.critical_statement(c)) for c in done],
            "escalate_minutes": settings.MEDPORTAL_CRITICAL_ESCALATE_MINUTES,
        },
    )


def critical_acknowledge(request: HttpRequest, token: str) -> HttpResponse:
    """The clinician's link: GET shows the result and a confirm button, POST acknowledges.
    (A GET never acknowledges: mail scanners open links.)"""
    critical = service.critical_for_token(token)
    if critical is None:
        audit_record(
            event_type=EventType.SECURITY_ALERT,
            action=Action.READ,
            description="Critical result link refused",
            outcome=Outcome.MINOR_FAILURE,
            request=request,
            username="(acknowledgement link)",
            object_type="critical_result",
        )
        return render(request, "communication/acknowledge.html", {"invalid": True}, status=404)
    form = AcknowledgeForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            service.critical_acknowledge_link(
                critical=critical, name=form.cleaned_data["name"], request=request
            )
        except CommunicationError as exc:
            error = str(exc)
        critical.refresh_from_db()
    else:
        critical_audit(
            critical,
            "Critical result link opened",
            action=Action.READ,
            request=request,
            username=f"{critical.recipient[:100]} (link)",
        )
    return render(
        request,
        "communication/acknowledge.html",
        {"critical": critical, "study": critical.report.study, "form": form, "error": error},
    )


@role_required(*CAN_COMMUNICATE_CRITICAL)
@require_POST
def followup_confirm(request: HttpRequest, report_id: int) -> HttpResponse:
    report = get_object_or_404(Report.objects.select_related("study__patient"), pk=report_id)
    form = FollowUpForm(request.POST)
    if not form.is_valid():
        return _panel(request, report, status=400, errors=_form_errors(form))
    try:
        followup_confirm_service(report=report, user=request.user, request=request, **form.cleaned_data)
    except CommunicationError as exc:
        return _panel(request, report, status=409, errors=[str(exc)])
    return _panel(request, report)


@role_required(*CAN_VIEW_CRITICAL)
def followup_list(request: HttpRequest) -> HttpResponse:
    """Open follow-ups by due date (overdue ones first and flagged), then the last ones closed."""
    base = FollowUp.objects.select_related("patient", "report__study", "closed_by_study")
    today = timezone.localdate()
    open_items = list(base.filter(status=FollowUpStatus.OPEN).order_by("due_date", "id"))
    closed = base.exclude(status=FollowUpStatus.OPEN).order_by("-closed_at")[:50]
    audit_record(
        event_type=EventType.QUERY,
        action=Action.READ,
        description="Follow-ups viewed",
        request=request,
        object_type="follow_up",
        detail={"open": len(open_items)},
    )
    return render(
        request,
        "communication/followup_list.html",
        {"open_items": open_items, "closed": closed, "today": today},
    )
