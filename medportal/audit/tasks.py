"""The audit anchor, run by the interfaces worker's beat every MEDPORTAL_AUDIT_ANCHOR_SECONDS."""

from __future__ import annotations

from celery import shared_task

ANCHOR_TASK = "medportal.audit.anchor"


@shared_task(name=ANCHOR_TASK, ignore_result=True)
def audit_anchor() -> int | None:
    from medportal.audit.anchors import audit_anchor_write

    anchor = audit_anchor_write()
    return anchor.seq if anchor else None
