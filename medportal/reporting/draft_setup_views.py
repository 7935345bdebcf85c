"""Setting what the next AI draft reads: the study's body part, and the prior it compares with."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from medportal.access.guards import role_required
from medportal.access.roles import CAN_EDIT_REPORTS, CAN_REQUEST_DRAFT
from medportal.imaging.models import Study
from medportal.imaging.services import study_set_body_part
from medportal.reporting.forms import BodyPartForm, PriorChoiceForm
from medportal.reporting.lifecycle import ReportError
from medportal.reporting.models import Report
from medportal.reporting.prior_choice import report_choose_prior
from medportal.reporting.services.drafts import report_for_study


@role_required(*CAN_REQUEST_DRAFT)
@require_POST
def study_body_part(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_object_or_404(Study.objects.select_related("patient"), pk=study_id)
    form = BodyPartForm(request.POST)
    if not report_for_study(study=study).is_open:
        messages.error(
            request, "The report is signed or cancelled: the body part of the study stays as it was."
        )
    elif form.is_valid():
        study_set_body_part(
            study=study, body_part=form.cleaned_data["body_part"], user=request.user, request=request
        )
        messages.success(request, f"Body part set to {study.body_part}; the next AI draft reads it.")
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("study-detail", study_id=study.pk)


@role_required(*CAN_EDIT_REPORTS)
@require_POST
def report_prior(request: HttpRequest, report_id: int) -> HttpResponse:
    report = get_object_or_404(Report.objects.select_related("study__patient"), pk=report_id)
    form = PriorChoiceForm(request.POST)
    value = form.cleaned_data["prior"] if form.is_valid() else ""
    who = {"user": request.user, "request": request}
    try:
        if value == "auto":
            report_choose_prior(report=report, prior_study=None, automatic=True, **who)
        elif value == "none":
            report_choose_prior(report=report, prior_study=None, **who)
        elif value.isdigit():
            report_choose_prior(report=report, prior_study=get_object_or_404(Study, pk=int(value)), **who)
        else:
            raise ReportError("Choose a prior exam, automatic or none.")
    except ReportError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Prior exam chosen: regenerate the draft to compare with it.")
    return redirect("study-detail", study_id=report.study_id)
