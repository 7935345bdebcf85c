"""Draft leases: a draft whose worker stopped renewing its lease is sent to a worker again by
the sweep, once per expiry, and written exactly once (the claim numbers)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from medportal.audit.models import AuditEvent
from medportal.reporting.models import Report, ReportStatus, ReportVersion
from medportal.reporting.services import drafts, leases
from medportal.reporting.tasks import draft_sweep
from tests.reporting.test_services import PROVENANCE, broker, new_report  # noqa: F401


def drafting(user) -> tuple[Report, drafts.DraftClaim]:
    report = new_report()
    attempt = drafts.draft_request(report=report, user=user).attempt
    claim = drafts.draft_start(report_id=report.pk, attempt=attempt)
    assert claim is not None
    return Report.objects.get(pk=report.pk), claim


def expire(report: Report) -> None:
    Report.objects.filter(pk=report.pk).update(
        draft_lease_until=timezone.now() - datetime.timedelta(seconds=1)
    )


@pytest.mark.django_db
def test_a_claimed_draft_holds_a_lease_that_saves_and_renewals_extend(radiologist, settings):
    report, claim = drafting(radiologist)
    assert report.draft_lease_until > timezone.now() + datetime.timedelta(
        seconds=settings.MEDPORTAL_DRAFT_LEASE_SECONDS - 5
    )
    expire(report)
    assert drafts.draft_progress(claim=claim, text="FINDINGS: so far")
    assert Report.objects.get(pk=report.pk).draft_lease_until > timezone.now()
    expire(report)
    assert leases.draft_leases_renew(claims=[claim]) == 1
    assert draft_sweep() == []  # alive: nothing to take up


@pytest.mark.django_db
def test_the_sweep_sends_a_draft_whose_lease_ran_out_again_once_and_it_is_written_once(radiologist, broker):  # noqa: F811
    report, dead = drafting(radiologist)
    broker.before = set(broker._raw())  # the first request's task is not the sweep's
    expire(report)

    assert draft_sweep() == [report.pk]
    assert Report.objects.get(pk=report.pk).status == ReportStatus.QUEUED  # waiting for a worker again
    assert draft_sweep() == []  # however long it waits: sent once
    assert broker.sent_drafts() == [[report.pk, report.attempt]]
    assert (
        AuditEvent.objects.filter(
            object_id=str(report.pk), description__startswith="AI draft sent to a worker again"
        ).count()
        == 1
    )

    # The task sent again claims the draft with the next number; the dead worker's claim is void.
    taken = drafts.draft_start(report_id=report.pk, attempt=report.attempt)
    assert taken.number == dead.number + 1
    assert not drafts.draft_progress(claim=dead, text="a late write")
    assert not drafts.draft_finish(
        claim=dead, text="FINDINGS: late.\nIMPRESSION: late.", provenance=PROVENANCE
    )
    assert drafts.draft_finish(
        claim=taken, text="FINDINGS: Clear.\nIMPRESSION: Normal.", provenance=PROVENANCE
    )
    stored = Report.objects.get(pk=report.pk)
    assert stored.status == ReportStatus.DRAFTED and stored.findings == "Clear."
    assert ReportVersion.objects.filter(report=stored, source=ReportVersion.AI).count() == 1
    assert draft_sweep() == []  # drafted: never swept again


@pytest.mark.django_db
def test_a_draft_whose_workers_keep_dying_fails_visibly(radiologist, broker):  # noqa: F811
    report, _ = drafting(radiologist)
    for _ in range(drafts.MAX_DRAFT_CLAIMS - 1):
        expire(report)
        assert draft_sweep() == [report.pk]
        assert drafts.draft_start(report_id=report.pk, attempt=report.attempt) is not None
    expire(report)
    assert draft_sweep() == [report.pk]
    assert drafts.draft_start(report_id=report.pk, attempt=report.attempt) is None
    stored = Report.objects.get(pk=report.pk)
    assert stored.status == ReportStatus.FAILED and "stopped 3 times" in stored.failure_reason
