"""The draft lease sweep, run by the interfaces worker's beat every MEDPORTAL_DRAFT_SWEEP_SECONDS."""

from __future__ import annotations

from celery import shared_task

SWEEP_TASK = "medportal.reporting.draft_sweep"


@shared_task(name=SWEEP_TASK, ignore_result=True)
def draft_sweep() -> list[int]:
    from medportal.reporting.services.leases import draft_leases_sweep

    return draft_leases_sweep()
