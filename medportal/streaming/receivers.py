"""Announce worklist changes once they are committed.

Reporting must not import streaming, so streaming listens: to ``post_save`` of studies
and reports (a study arrives, a report is created) and to reporting's ``report_changed``
(sent by its services, whose conditional UPDATEs send no ``post_save``).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save

from medportal.reporting.models import Report
from medportal.reporting.signals import report_changed
from medportal.streaming.publish import worklist_changed


def _publish_after_commit(**kwargs) -> None:
    # robust: the change is committed; a Redis hiccup must not turn it into an error
    # page. Open pages poll while their websocket is down, so they still catch up.
    transaction.on_commit(worklist_changed, robust=True)


def connect() -> None:
    # Study by its label: imaging's models are reporting's business, not streaming's.
    post_save.connect(_publish_after_commit, sender="imaging.Study", dispatch_uid="worklist-study-saved")
    post_save.connect(_publish_after_commit, sender=Report, dispatch_uid="worklist-report-saved")
    report_changed.connect(_publish_after_commit, sender=Report, dispatch_uid="worklist-report-changed")
