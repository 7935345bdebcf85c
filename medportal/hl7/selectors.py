from __future__ import annotations

from django.db.models import QuerySet

from medportal.hl7.models import FAILED_STATES, MessageStatus, OutboundMessage

# The outbox page's filters: name -> (label, statuses).
FILTERS = {
    "": ("All", None),
    "pending": ("Pending", [MessageStatus.PENDING]),
    "failed": ("Failed", list(FAILED_STATES)),
    "sent": ("Sent", [MessageStatus.SENT]),
}


def outbox_messages(*, show: str = "") -> QuerySet[OutboundMessage]:
    """The outbox, newest first; ``show`` one of FILTERS."""
    messages = OutboundMessage.objects.select_related("report__study__patient", "addendum")
    statuses = FILTERS.get(show, FILTERS[""])[1]
    return messages.filter(status__in=statuses) if statuses else messages
