"""Reads for the pages: a report's critical results and follow-ups, the lists of each."""

from __future__ import annotations

from medportal.access.roles import CAN_COMMUNICATE_CRITICAL, has_role
from medportal.communication.critical import critical_statement, email_configured, report_critical_results
from medportal.communication.followups import report_recommendations
from medportal.communication.forms import CriticalMarkForm, CriticalNotifyForm, FollowUpForm, ReadBackForm
from medportal.reporting.models import Report, ReportStatus


def communication_context(*, report: Report, user, **extra) -> dict:
    criticals = report_critical_results(report)
    return {
        "report": report,
        "criticals": [(c, critical_statement(c)) for c in criticals],
        "can_communicate": has_role(user, *CAN_COMMUNICATE_CRITICAL)
        and report.status != ReportStatus.CANCELLED,
        "mark_form": extra.pop("mark_form", None) or CriticalMarkForm(),
        "notify_form": CriticalNotifyForm(),
        "read_back_form": ReadBackForm(),
        "email_configured": email_configured(),
        "follow_ups": list(report.follow_ups.select_related("closed_by_study").order_by("due_date", "id")),
        # What the signed text recommends, each a form to confirm (and correct) before it is tracked.
        "recommendations": [
            FollowUpForm(initial={"text": r.text, "modality": r.modality, "due_date": r.due_date})
            for r in report_recommendations(report)
        ],
        "follow_up_form": FollowUpForm(),
        **extra,
    }
