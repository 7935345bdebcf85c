"""Reads for the pages: a report's critical results and follow-ups, the lists of each."""

from __future__ import annotations

from medportal.access.roles import CAN_COMMUNICATE_CRITICAL, has_role
from medportal.communication.critical import critical_statement, email_configured, report_critical_results
from medportal.communication.forms import CriticalMarkForm, CriticalNotifyForm, ReadBackForm
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
        **extra,
    }
