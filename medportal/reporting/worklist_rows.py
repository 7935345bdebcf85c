"""The worklist's rows: their values prepared once in Python, then their HTML.

The worklist is the page a radiologist opens most. Given model instances, its template
resolved some thirty lookups, filters and URL tags per row (50 rows a page): most of the
page's time. Here each row is a dict of ready values, and the rows' HTML is made from them with
``format_html``; the template places the rows.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from medportal.accounts.names import display_name
from medportal.imaging.models import Study
from medportal.reporting.models import AI_DRAFT_LABELS, Report


def worklist_row(study: Study, *, user_id: int, can_edit: bool) -> dict:
    """One study's row: what each cell shows, and which action its user may take."""
    report: Report | None = getattr(study, "report", None)
    priority_label = study.get_priority_display()
    row = {
        "study_id": study.pk,
        "priority": study.priority,
        "priority_label": priority_label,
        "priority_class": priority_label.lower(),
        "detail_url": reverse("study-detail", args=[study.pk]),
        "patient_name": study.patient.name,
        "mrn": study.patient.patient_id,
        "accession": study.accession_number,
        "modality": study.modality,
        "body_part": study.body_part,
        "study_date": study.study_date.strftime("%Y-%m-%d") if study.study_date else "",
        "received": timezone.localtime(study.received_at).strftime("%Y-%m-%d %H:%M"),
        "draft_state": report.ai_draft_state if report else "none",
        "draft_label": report.ai_draft_label if report else AI_DRAFT_LABELS["none"],
        "status": report.status if report else "received",
        "status_label": report.get_status_display() if report else "Awaiting draft",
        "assignee": display_name(report.assigned_to) if report else "",
        "report_id": report.pk if report else None,
        "assigned_to_id": report.assigned_to_id if report else None,
        "is_open": bool(report and report.is_open),
        "claim_url": "",
        "release_url": "",
    }
    if row["is_open"] and can_edit:
        if not report.assigned_to_id:
            row["claim_url"] = reverse("report-claim", args=[report.pk])
        elif report.assigned_to_id == user_id:
            row["release_url"] = reverse("report-release", args=[report.pk])
    return row


def worklist_rows(studies: list[Study], *, user_id: int, can_edit: bool) -> list[dict]:
    return [worklist_row(study, user_id=user_id, can_edit=can_edit) for study in studies]


# Each row's cells, filled by format_html (which escapes every value), as Django's admin builds
# its change list: the template's per-row variable lookups and filters were most of the page's time.
_ROW = (
    '<tr data-study-id="{study_id}" class="priority-{priority}">'
    '<td><span class="priority priority-{priority_class}">{priority_label}</span></td>'
    '<td class="patient-name" title="{patient_name}"><a href="{detail_url}">{shown_name}</a></td>'
    "<td>{mrn}</td><td>{accession}</td><td>{modality}</td><td>{body_part}</td>"
    "<td>{study_date}</td><td>{received}</td>"
    '<td><span class="draft draft-{draft_state}">{draft_label}</span></td>'
    '<td><span class="status status-{status}">{status_label}</span></td>'
    '<td class="assigned">{assignee}</td>'
    '<td class="actions">{actions}</td></tr>\n'
)
_ACTION = (
    '<form method="post" action="{url}" hx-post="{url}" hx-target="#worklist" hx-swap="outerHTML">'
    '{csrf}<input type="hidden" name="return_to" value="{return_to}">'
    '<button type="submit">{label}</button></form>'
)
_ASSIGN = (
    '<form method="post" action="{url}" hx-post="{url}" hx-target="#worklist" hx-swap="outerHTML" '
    'class="assign">'
    '{csrf}<input type="hidden" name="return_to" value="{return_to}">'
    '<select name="assignee" aria-label="Assign to"><option value="">(nobody)</option>{options}</select>'
    '<button type="submit">Assign</button></form>'
)
_NOBODY = mark_safe('<span class="help">—</span>')


def _actions(row: dict, *, csrf: SafeString, return_to: str, assignees: list[tuple[int, str]]) -> SafeString:
    """The row's forms: Claim or Release for its user, Assign for an admin (open reports only)."""
    if not row["is_open"]:
        return mark_safe("")
    forms = []
    if row["claim_url"]:
        forms.append(
            format_html(_ACTION, url=row["claim_url"], csrf=csrf, return_to=return_to, label="Claim")
        )
    elif row["release_url"]:
        forms.append(
            format_html(_ACTION, url=row["release_url"], csrf=csrf, return_to=return_to, label="Release")
        )
    if assignees:
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (pk, mark_safe(" selected") if pk == row["assigned_to_id"] else "", name)
                for pk, name in assignees
            ),
        )
        url = reverse("report-assign", args=[row["report_id"]])
        forms.append(format_html(_ASSIGN, url=url, csrf=csrf, return_to=return_to, options=options))
    return mark_safe("".join(forms))


def worklist_rows_html(
    rows: list[dict], *, csrf_token: str, return_to: str, assignees: list[tuple[int, str]]
) -> SafeString:
    """The table body's rows. ``assignees``: (user id, name) of the radiologists an admin may
    assign to (empty for anyone else)."""
    csrf = format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', csrf_token)
    return mark_safe(
        "".join(
            format_html(
                _ROW,
                **{**row, "assignee": row["assignee"] or _NOBODY},
                shown_name=row["patient_name"] or "(no name)",
                actions=_actions(row, csrf=csrf, return_to=return_to, assignees=assignees),
            )
            for row in rows
        )
    )
