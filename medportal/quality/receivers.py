"""Measure each report as its signature commits.

Reporting must not import quality, so quality listens to ``report_signed`` (sent after the
commit). A failure here must not turn a committed signature into an error page, nor stop
the receivers after this one (the outbound interfaces): it is logged, and
``manage.py quality_backfill`` measures whatever was missed.
"""

from __future__ import annotations

import logging

from medportal.quality.services import outcome_record
from medportal.reporting.models import Report
from medportal.reporting.signals import report_signed

logger = logging.getLogger(__name__)


def _report_signed(*, report_id: int, addendum_id: int | None = None, **kwargs) -> None:
    if addendum_id is not None:
        return  # an addendum changes nothing in the signed text measured
    try:
        outcome_record(report_id=report_id)
    except Exception:
        logger.exception("Could not measure signed report %s against its AI draft", report_id)


def connect() -> None:
    report_signed.connect(_report_signed, sender=Report, dispatch_uid="quality-report-signed")
