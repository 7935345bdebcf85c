"""Leases on drafts in progress: a draft whose worker died is taken up again.

The worker that claims a draft (``drafts.draft_start``) holds a lease on it until
``draft_lease_until``, and renews it while it is alive: each save of the text so far
(``drafts.draft_progress``), and a renewer thread for every draft it holds, every third of
MEDPORTAL_DRAFT_LEASE_SECONDS (also while a draft waits for the model). The sweep, every
MEDPORTAL_DRAFT_SWEEP_SECONDS on the interfaces worker's beat, puts each draft whose lease ran
out back in the queue ("queued" again, a conditional UPDATE: of two sweeps at once one does it)
and sends it to its queue; it then waits there for a worker however long that takes. The next
worker claims it with the next claim number (a conditional UPDATE), so exactly one worker writes
it, and after MAX_DRAFT_CLAIMS the report fails visibly.
"""

from __future__ import annotations

import datetime

from celery import current_app
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from medportal.audit.models import Action
from medportal.celery import DRAFT_TASK, draft_queue
from medportal.reporting import lifecycle
from medportal.reporting.auditing import report_audit
from medportal.reporting.models import Report, ReportStatus


def lease_length() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.MEDPORTAL_DRAFT_LEASE_SECONDS)


def lease_until() -> datetime.datetime:
    return timezone.now() + lease_length()


def draft_leases_renew(*, claims) -> int:
    """Renew the leases of the drafts this worker holds (``DraftClaim``s); how many it still held."""
    if not claims:
        return 0
    held = Q()
    for claim in claims:
        held |= Q(pk=claim.report_id, attempt=claim.attempt, draft_claim=claim.number)
    return Report.objects.filter(held, status=ReportStatus.DRAFTING).update(draft_lease_until=lease_until())


def draft_leases_sweep() -> list[int]:
    """Send every draft whose lease ran out (its worker died) to a worker again; their report ids."""
    now = timezone.now()
    expired = Report.objects.filter(status=ReportStatus.DRAFTING).filter(
        Q(draft_lease_until__lt=now)
        # Claimed before leases existed: its start is the lease.
        | Q(draft_lease_until__isnull=True, draft_started_at__lt=now - lease_length())
    )
    requeued = []
    for row in expired.values("pk", "attempt", "draft_claim", "draft_lease_until", "draft_queue"):
        won = Report.objects.filter(
            pk=row["pk"],
            attempt=row["attempt"],
            draft_claim=row["draft_claim"],
            status__in=lifecycle.sources("requeue_draft"),
            draft_lease_until=row["draft_lease_until"],
        ).update(status=lifecycle.target("requeue_draft"), draft_lease_until=None, draft_text="")
        if not won:  # renewed, finished or re-queued meanwhile
            continue
        report = Report.objects.select_related("study__patient").get(pk=row["pk"])
        report_audit(
            report,
            "AI draft sent to a worker again: its worker stopped renewing its lease",
            action=Action.EXECUTE,
            detail={"attempt": row["attempt"], "claim": row["draft_claim"]},
        )
        queue = row["draft_queue"] or draft_queue()
        current_app.send_task(DRAFT_TASK, args=[row["pk"], row["attempt"]], queue=queue)
        requeued.append(row["pk"])
    return requeued
