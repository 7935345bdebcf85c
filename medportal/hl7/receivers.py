"""Queue the HL7 message of each signature. Reporting sends ``report_signed`` once a signature
has committed and knows nothing of HL7; this app listens."""

from __future__ import annotations

import logging

from medportal.hl7.services import message_queue
from medportal.reporting.models import Report
from medportal.reporting.signals import report_signed

logger = logging.getLogger(__name__)


def _queue_message(sender, *, report_id: int, addendum_id: int | None, **kwargs) -> None:
    # The signature is committed: a failure here must not turn it into an error page for the
    # radiologist. The outbox sweep creates any message that is missing.
    try:
        message_queue(report_id=report_id, addendum_id=addendum_id)
    except Exception:
        logger.exception(
            "HL7 message of report %s (addendum %s) not queued; the outbox sweep will", report_id, addendum_id
        )


def connect() -> None:
    report_signed.connect(_queue_message, sender=Report, dispatch_uid="hl7-queue-message")
