"""Where each role starts: the page a user lands on after login, and the way back from a 403."""

from __future__ import annotations

from typing import Any

from medportal.access.roles import CAN_OPERATE, CAN_READ_AUDIT, CAN_VIEW_STUDIES, Role, has_role

# First match wins: who reads studies starts on the worklist, an auditor on the audit trail.
HOMES: tuple[tuple[tuple[Role, ...], str], ...] = (
    (CAN_VIEW_STUDIES, "worklist"),
    (CAN_READ_AUDIT, "audit-list"),
    (CAN_OPERATE, "workers-status"),
)


def home_url_name(user: Any) -> str | None:
    """The URL name of ``user``'s home page; None for a user in no role that has one."""
    for roles, url_name in HOMES:
        if has_role(user, *roles):
            return url_name
    return None
