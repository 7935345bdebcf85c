"""Report template pages, for admins: list, create, edit, (de)activate, delete, import IHE MRRT.

Templates hold no patient data; every change is audited by ``report_templates.library``.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from medportal.access.guards import role_required
from medportal.access.roles import CAN_MANAGE_TEMPLATES
from medportal.reporting.models import ReportTemplate
from medportal.reporting.report_templates import library as template_library
from medportal.reporting.report_templates.forms import TemplateFilterForm, TemplateForm, TemplateImportForm
from medportal.reporting.report_templates.library import TemplateError
from medportal.reporting.report_templates.mrrt import MrrtError


def _template_or_404(template_id: int) -> ReportTemplate:
    return get_object_or_404(ReportTemplate.objects.annotate(used=Count("reports")), pk=template_id)


@role_required(*CAN_MANAGE_TEMPLATES)
def template_list(request: HttpRequest) -> HttpResponse:
    form = TemplateFilterForm(request.GET)
    templates = form.templates().annotate(used=Count("reports"))
    return render(request, "reporting/template_list.html", {"form": form, "templates": templates})


@role_required(*CAN_MANAGE_TEMPLATES)
@require_http_methods(["GET", "POST"])
def template_create(request: HttpRequest) -> HttpResponse:
    form = TemplateForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            template = template_library.template_create(
                user=request.user, request=request, **form.cleaned_data
            )
        except TemplateError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Template “{template.name}” created.")
            return redirect("template-list")
    return render(
        request,
        "reporting/template_form.html",
        {"form": form, "template": None},
        status=400 if form.is_bound else 200,
    )


@role_required(*CAN_MANAGE_TEMPLATES)
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, template_id: int) -> HttpResponse:
    template = _template_or_404(template_id)
    form = TemplateForm.for_template(template, request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            template = template_library.template_update(
                template=template, user=request.user, request=request, **form.cleaned_data
            )
        except TemplateError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Template “{template.name}” saved.")
            return redirect("template-list")
    return render(
        request,
        "reporting/template_form.html",
        {"form": form, "template": template},
        status=400 if form.is_bound else 200,
    )


@role_required(*CAN_MANAGE_TEMPLATES)
@require_POST
def template_set_active(request: HttpRequest, template_id: int) -> HttpResponse:
    template = _template_or_404(template_id)
    choice = request.POST.get("active")
    if choice not in ("true", "false"):
        messages.error(request, "Say whether the template is to be active.")
        return _back(request, status=400)
    try:
        template = template_library.template_set_active(
            template=template, active=choice == "true", user=request.user, request=request
        )
    except TemplateError as exc:
        messages.error(request, str(exc))
        return _back(request, status=409)
    state = "active: new drafts use it" if template.active else "inactive: new drafts no longer use it"
    messages.success(request, f"Template “{template.name}” is {state}.")
    return _back(request)


@role_required(*CAN_MANAGE_TEMPLATES)
@require_POST
def template_delete(request: HttpRequest, template_id: int) -> HttpResponse:
    template = _template_or_404(template_id)
    try:
        template_library.template_delete(template=template, user=request.user, request=request)
    except TemplateError as exc:
        messages.error(request, str(exc))
        return _back(request, status=409)
    messages.success(request, f"Template “{template.name}” deleted.")
    return _back(request)


@role_required(*CAN_MANAGE_TEMPLATES)
@require_http_methods(["GET", "POST"])
def template_import(request: HttpRequest) -> HttpResponse:
    form = (
        TemplateImportForm(request.POST, request.FILES) if request.method == "POST" else TemplateImportForm()
    )
    if form.is_bound and form.is_valid():
        try:
            template, parsed = template_library.template_import_mrrt(
                data=form.cleaned_data["file"].read(),
                modality=form.cleaned_data["modality"],
                body_part=form.cleaned_data["body_part"],
                user=request.user,
                request=request,
            )
        except (MrrtError, TemplateError) as exc:
            form.add_error("file", f"{exc} Nothing was stored.")
        else:
            kept = [s.name for s in parsed.sections if s.kind]
            scope = template_library.template_scope_label(template)
            notice = f"Imported “{template.name}” ({scope}): {', '.join(kept)}."
            if parsed.left_out:
                notice += (
                    f" Left out: {', '.join(parsed.left_out)} (MedPortal reports have no such section; "
                    "the clinical indication comes from the study)."
                )
            messages.success(request, notice + " Review it below.")
            return redirect("template-edit", template_id=template.pk)
    return render(
        request, "reporting/template_import.html", {"form": form}, status=400 if form.is_bound else 200
    )


def _back(request: HttpRequest, status: int = 302) -> HttpResponse:
    """Back to the list (a refusal says so in its status too, and shows the list with the message)."""
    if status == 302:
        return redirect("template-list")
    form = TemplateFilterForm()
    templates = form.templates().annotate(used=Count("reports"))
    return render(
        request, "reporting/template_list.html", {"form": form, "templates": templates}, status=status
    )
