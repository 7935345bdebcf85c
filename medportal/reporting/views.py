"""Pages: worklist, study (images + report), and the report actions."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import reswap

from medportal.access.guards import role_required
from medportal.access.homes import home_url_name
from medportal.access.roles import (
    CAN_CANCEL_REPORTS,
    CAN_EDIT_REPORTS,
    CAN_REQUEST_DRAFT,
    CAN_SIGN_REPORTS,
    CAN_VIEW_STUDIES,
    Role,
    has_role,
)
from medportal.accounts.names import display_name
from medportal.accounts.second_factor import totp_device
from medportal.audit.models import Action, EventType, Outcome
from medportal.audit.services import audit_record
from medportal.imaging.auditing import study_audit
from medportal.imaging.models import Study
from medportal.imaging.selectors import study_has_images, study_other_objects
from medportal.ohif.links import reading_room
from medportal.reporting.auditing import report_audit
from medportal.reporting.draft_setup import draft_setup
from medportal.reporting.forms import (
    AddendumForm,
    AssignForm,
    CancelForm,
    DraftRequestForm,
    IndicationForm,
    ReportEditForm,
    SignForm,
    WorklistFilterForm,
    radiologists,
)
from medportal.reporting.lifecycle import ReportError
from medportal.reporting.models import Report
from medportal.reporting.proofread import sign_gate
from medportal.reporting.report_templates.library import template_for_study
from medportal.reporting.selectors import (
    WorklistParams,
    report_ai_draft,
    report_changes,
    report_stream_path,
    worklist_page,
)
from medportal.reporting.services import claims, drafts, editing
from medportal.reporting.services.indication import study_indication_save
from medportal.reporting.services.signoff import refusal_audited, sign_refused_before_reading
from medportal.reporting.worklist_rows import worklist_rows, worklist_rows_html

# (sort key, heading) in the order the worklist shows them.
WORKLIST_COLUMNS = [
    ("priority", "Priority"),
    ("patient", "Patient"),
    ("mrn", "MRN"),
    ("accession", "Accession"),
    ("modality", "Modality"),
    ("body_part", "Body part"),
    ("study_date", "Study date"),
    ("received", "Received"),
    ("ai_draft", "AI draft"),
    ("status", "Report"),
    ("assigned", "Radiologist"),
]


def _worklist_context(request: HttpRequest, params: WorklistParams) -> dict:
    page = worklist_page(user=request.user, params=params)
    key, descending = params.sort.removeprefix("-"), params.sort.startswith("-")
    columns = [
        {
            "key": name,
            "label": label,
            "active": name == key,
            "descending": descending,
            # A click sorts by the column; a second click reverses it.
            "url": "?" + params.query(sort=f"-{name}" if name == key and not descending else name, page=1),
        }
        for name, label in WORKLIST_COLUMNS
    ]
    rows = worklist_rows(
        page.rows, user_id=request.user.pk, can_edit=has_role(request.user, *CAN_EDIT_REPORTS)
    )
    assignees = (
        [(user.pk, display_name(user)) for user in radiologists()]
        if has_role(request.user, Role.ADMIN)
        else []
    )
    query = params.query()
    return {
        "params": params,
        "page": page,
        "rows": rows,
        "rows_html": worklist_rows_html(
            rows, csrf_token=get_token(request), return_to=query, assignees=assignees
        ),
        "columns": columns,
        "query": query,
        "previous_url": "?" + params.query(page=page.number - 1),
        "next_url": "?" + params.query(page=page.number + 1),
    }


@login_required
def worklist(request: HttpRequest) -> HttpResponse:
    # "/" is where login lands: a role without the worklist (an auditor) goes to its own home.
    if not has_role(request.user, *CAN_VIEW_STUDIES):
        home = home_url_name(request.user)
        if home is None:
            raise PermissionDenied
        return redirect(home)
    form = WorklistFilterForm(request.GET)
    params = form.params()
    context = {"form": form, **_worklist_context(request, params)}
    audit_record(
        event_type=EventType.QUERY,
        action=Action.READ,
        description="Worklist viewed",
        request=request,
        detail=params.audit_detail(),
    )
    template = "reporting/worklist.html#worklist" if request.htmx else "reporting/worklist.html"
    return render(request, template, context)


def _after_worklist_action(
    request: HttpRequest,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
    report: Report | None = None,
) -> HttpResponse:
    """Back to the worklist as the user had it (``return_to`` holds its query string)."""
    if error and report is not None:
        report_audit(
            report,
            f"Report action refused: {request.resolver_match.url_name}",
            action=Action.UPDATE,
            outcome=Outcome.MINOR_FAILURE,
            request=request,
            detail={"reason": error[:300]},
        )
    form = WorklistFilterForm(QueryDict(request.POST.get("return_to", "")))
    params = form.params()
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, notice)
        query = params.query()
        return redirect(reverse("worklist") + (f"?{query}" if query else ""))
    context = {"form": form, "notice": notice, "error": error, **_worklist_context(request, params)}
    return render(request, "reporting/worklist.html#worklist-action", context, status=status)


def _study_words(report: Report) -> str:
    study = report.study
    parts = [study.patient.name or "(no name)", f"MRN {study.patient.patient_id}", study.modality]
    return ", ".join(part for part in parts if part)


@role_required(*CAN_EDIT_REPORTS)
@require_POST
def report_claim(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report_or_404(report_id)
    try:
        claims.report_claim(report=report, user=request.user, request=request)
    except ReportError as exc:
        return _after_worklist_action(request, error=str(exc), status=409, report=report)
    return _after_worklist_action(request, notice=f"You claimed {_study_words(report)}.")


@role_required(*CAN_EDIT_REPORTS)
@require_POST
def report_release(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report_or_404(report_id)
    try:
        claims.report_release(report=report, user=request.user, request=request)
    except ReportError as exc:
        return _after_worklist_action(request, error=str(exc), status=409, report=report)
    return _after_worklist_action(request, notice=f"You released {_study_words(report)}.")


@role_required(Role.ADMIN)
@require_POST
def report_assign(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report_or_404(report_id)
    form = AssignForm(request.POST)
    if not form.is_valid():
        return _after_worklist_action(
            request, error="Choose a radiologist from the list.", status=400, report=report
        )
    assignee = form.cleaned_data["assignee"]
    try:
        claims.report_assign(report=report, assignee=assignee, user=request.user, request=request)
    except ReportError as exc:
        return _after_worklist_action(request, error=str(exc), status=409, report=report)
    who = display_name(assignee) or "nobody"
    return _after_worklist_action(request, notice=f"{_study_words(report)} is assigned to {who}.")


@role_required(*CAN_EDIT_REPORTS)
@require_POST
def worklist_next(request: HttpRequest) -> HttpResponse:
    """Claim the next unclaimed study in reading order and open it."""
    try:
        report = claims.worklist_next(user=request.user, request=request)
    except ReportError as exc:
        messages.error(request, str(exc))
        return redirect("worklist")
    if report is None:
        messages.info(request, "No unclaimed studies are waiting.")
        return redirect("worklist")
    messages.success(request, f"You claimed {_study_words(report)}.")
    return redirect("study-detail", study_id=report.study_id)


def _editor(report: Report) -> dict:
    """The editor's template, sections and starting text.

    The template is the one the AI draft used, else the one the study matches. A report with
    no text yet (no draft wanted, or the draft failed) starts from the template's normal text;
    nothing is stored until the radiologist saves.
    """
    template = report.template
    if template is None and report.is_editable:
        study = report.study
        template = template_for_study(modality=study.modality, body_part=study.body_part)
    initial = {
        "technique": report.technique,
        "comparison": report.comparison,
        "findings": report.findings,
        "impression": report.impression,
        "version": report.version,
    }
    blank = not any((report.technique, report.comparison, report.findings, report.impression))
    prefilled = template is not None and report.version == 0 and blank and report.is_editable
    if prefilled:
        initial |= {
            name: getattr(template, name) for name in ("technique", "comparison", "findings", "impression")
        }
    return {
        "editor_template": template,
        "prefilled_from": template if prefilled else None,
        "show_technique": bool(report.technique or (template and template.has_technique)),
        "show_comparison": bool(report.comparison or (template and template.has_comparison)),
        "initial": initial,
    }


# The editor saves itself this long after the last keystroke (static/medportal/editor.js).
AUTOSAVE_MS = 4000
# Sent by the editor's own saves (autosave, Ctrl+S): the answer carries the new version and
# the changes only, and leaves the text being typed alone.
QUIET_SAVE_HEADER = "X-MedPortal-Save"


def _report_context(request: HttpRequest, report: Report, **extra) -> dict:
    editor = _editor(report)
    ai_draft = report_ai_draft(report) if report.is_editable else None
    return {
        **draft_setup(report),
        "report": report,
        "study": report.study,
        "ai_draft": ai_draft,
        "changes": report_changes(report, ai_draft),
        "draft_form": extra.pop("draft_form", None) or DraftRequestForm(),
        "edit_form": extra.pop("edit_form", None) or ReportEditForm(initial=editor.pop("initial")),
        "sign_form": extra.pop("sign_form", None) or SignForm(initial={"version": report.version}),
        "addendum_form": extra.pop("addendum_form", None) or AddendumForm(),
        "cancel_form": CancelForm(),
        "addenda": report.addenda.select_related("signed_by"),
        "stream_url": report_stream_path(report.pk),
        "needs_sign_code": totp_device(request.user) is not None,
        **editor,
        "autosave_ms": AUTOSAVE_MS,
        **extra,
    }


@role_required(*CAN_VIEW_STUDIES)
def study_detail(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_object_or_404(Study.objects.select_related("patient"), pk=study_id)
    report = drafts.report_for_study(study=study)
    study_audit(
        study, "Study viewed", event_type=EventType.PATIENT_RECORD, action=Action.READ, request=request
    )
    return _study_page(request, report)


def _study_page(request: HttpRequest, report: Report, *, status: int = 200, **extra) -> HttpResponse:
    study = report.study
    context = _report_context(
        request,
        report,
        **reading_room(study),
        other_objects=study_other_objects(study),
        has_images=study_has_images(study),
        indication_form=IndicationForm(initial={"indication": study.indication}),
        **extra,
    )
    return render(request, "reporting/study_detail.html", context, status=status)


def _report_panel(
    request: HttpRequest, report: Report, status: int = 200, *, audited: bool = False, **extra
) -> HttpResponse:
    # ``audited``: the service recorded this refusal already (one event per refusal).
    if extra.get("errors") and not audited:
        report_audit(
            report,
            f"Report action refused: {request.resolver_match.url_name}",
            action=Action.UPDATE,
            outcome=Outcome.MINOR_FAILURE,
            request=request,
            detail={"reason": "; ".join(extra["errors"])[:300]},
        )
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
    report_audit(report, "Report viewed", action=Action.READ, request=request)
    return render(request, "reporting/study_detail.html#report-panel", _report_context(request, report))


@role_required(*CAN_REQUEST_DRAFT)
@require_POST
def study_indication(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_object_or_404(Study.objects.select_related("patient"), pk=study_id)
    form = IndicationForm(request.POST)
    if form.is_valid():
        try:
            study_indication_save(
                study=study, indication=form.cleaned_data["indication"], user=request.user, request=request
            )
        except ReportError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Clinical indication saved; it goes into the next draft's prompt.")
    else:
        messages.error(request, "; ".join(_form_errors(form)))
    return redirect("study-detail", study_id=study.pk)


@role_required(*CAN_REQUEST_DRAFT)
@require_POST
def report_draft(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report_or_404(report_id)
    form = DraftRequestForm(request.POST)
    if not form.is_valid():
        return _report_panel(request, report, status=400, errors=_form_errors(form), draft_form=form)
    try:
        drafts.draft_request(
            report=report,
            user=request.user,
            instruction=form.cleaned_data["instruction"],
            request=request,
        )
    except ReportError as exc:
        return _report_panel(
            request, report, status=409, errors=[str(exc)], audited=refusal_audited(exc), draft_form=form
        )
    return _report_panel(request, report)


@role_required(*CAN_EDIT_REPORTS)
@require_POST
def report_save(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report_or_404(report_id)
    quiet = bool(request.htmx) and request.headers.get(QUIET_SAVE_HEADER) in ("auto", "keyboard")

    def refused(response: HttpResponse) -> HttpResponse:
        # A quiet save asked for no swap; a refusal replaces the panel so its message is seen.
        return reswap(response, "innerHTML") if quiet else response

    form = ReportEditForm(request.POST)
    if not form.is_valid():
        return refused(
            _report_panel(request, report, status=400, errors=["The form was incomplete; reload the page."])
        )
    was_signable = report.is_signable
    try:
        editing.report_save(
            report=report,
            user=request.user,
            findings=form.cleaned_data["findings"],
            impression=form.cleaned_data["impression"],
            # Only when the editor showed them: otherwise they stay as they are.
            technique=form.cleaned_data["technique"] if "technique" in request.POST else None,
            comparison=form.cleaned_data["comparison"] if "comparison" in request.POST else None,
            expected_version=form.cleaned_data["version"],
            request=request,
        )
    except editing.ReportConflict as exc:
        # The newer text goes into the editor; what this user typed stays shown, to copy from.
        return refused(
            _report_panel(
                request,
                exc.report,
                status=409,
                errors=[str(exc)],
                audited=refusal_audited(exc),
                unsaved=form.cleaned_data,
            )
        )
    except ReportError as exc:
        return refused(
            _report_panel(request, report, status=409, errors=[str(exc)], audited=refusal_audited(exc))
        )
    if quiet:
        report.refresh_from_db()
        context = _report_context(request, report, saved_at=timezone.now(), sign_appeared=not was_signable)
        return reswap(render(request, "reporting/study_detail.html#report-saved", context), "none")
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
    # The proofread, once nothing else refuses the sign-off: what it finds waits beside the Sign
    # button for "fix" or "sign anyway". (A lockout, a wrong password or another's claim goes on to
    # the sign-off's own refusal.)
    if (
        report.is_signable
        and not sign_refused_before_reading(
            report=report, user=request.user, password=form.cleaned_data["password"], request=request
        )
        and (
            issues := sign_gate(
                report=report,
                user=request.user,
                sign_anyway=request.POST.getlist("sign_anyway"),
                request=request,
            )
        )
    ):
        if not request.htmx:
            return _study_page(request, report, status=409, proofread=issues)
        return _report_panel(request, report, status=409, proofread=issues)
    try:
        editing.report_sign(
            report=report,
            user=request.user,
            password=form.cleaned_data["password"],
            otp_code=form.cleaned_data["otp_code"],
            expected_version=form.cleaned_data["version"],
            request=request,
        )
    except ReportError as exc:
        return _report_panel(request, report, status=409, errors=[str(exc)], audited=refusal_audited(exc))
    if not request.htmx:
        messages.success(request, "Report signed.")
    return _report_panel(request, report)


def _form_errors(form) -> list[str]:
    return [e for errors in form.errors.values() for e in errors]


@role_required(*CAN_SIGN_REPORTS)
@require_POST
def report_addendum(request: HttpRequest, report_id: int) -> HttpResponse:
    """Sign an addendum to a signed report (password, and TOTP code when enrolled)."""
    report = _report_or_404(report_id)
    form = AddendumForm(request.POST)
    if not form.is_valid():
        return _report_panel(request, report, status=400, errors=_form_errors(form), addendum_form=form)
    try:
        addendum = editing.addendum_sign(
            report=report,
            user=request.user,
            text=form.cleaned_data["text"],
            password=form.cleaned_data["password"],
            otp_code=form.cleaned_data["otp_code"],
            request=request,
        )
    except ReportError as exc:
        return _report_panel(
            request, report, status=409, errors=[str(exc)], audited=refusal_audited(exc), addendum_form=form
        )
    if not request.htmx:
        messages.success(request, f"Addendum {addendum.number} signed.")
    return _report_panel(request, report)


@role_required(*CAN_CANCEL_REPORTS)
@require_POST
def report_cancel(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report_or_404(report_id)
    form = CancelForm(request.POST)
    if not form.is_valid():
        return _report_panel(request, report, status=400, errors=_form_errors(form))
    try:
        editing.report_cancel(
            report=report, user=request.user, reason=form.cleaned_data["reason"], request=request
        )
    except ReportError as exc:
        return _report_panel(request, report, status=409, errors=[str(exc)], audited=refusal_audited(exc))
    if not request.htmx:
        messages.success(request, "Report cancelled.")
    return _report_panel(request, report)
