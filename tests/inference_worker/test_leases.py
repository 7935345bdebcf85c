"""The worker renews the lease of every draft it holds while it lives, also while no text comes."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from inference_worker import leases
from medportal.reporting.models import Report
from medportal.reporting.services import drafts
from tests.reporting.test_services import new_report


@pytest.mark.django_db(transaction=True)
def test_a_held_draft_keeps_its_lease_until_released(radiologist, settings):
    settings.MEDPORTAL_DRAFT_LEASE_SECONDS = 3  # renewed every second
    report = new_report()
    attempt = drafts.draft_request(report=report, user=radiologist).attempt
    claim = drafts.draft_start(report_id=report.pk, attempt=attempt)
    leases.hold(claim)
    try:
        first = Report.objects.get(pk=report.pk).draft_lease_until
        time.sleep(2.5)
        renewed = Report.objects.get(pk=report.pk).draft_lease_until
        assert renewed > first and renewed > timezone.now()
    finally:
        leases.release(claim)
    time.sleep(1.5)
    held = Report.objects.get(pk=report.pk).draft_lease_until
    time.sleep(1.5)
    assert Report.objects.get(pk=report.pk).draft_lease_until == held  # released: no longer renewed
