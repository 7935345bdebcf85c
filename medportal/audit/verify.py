"""Walking the audit hash chain to find the first row that does not fit."""

from __future__ import annotations

from dataclasses import dataclass

from medportal.audit.models import AuditEvent
from medportal.audit.services import GENESIS_HASH, chain_hash


@dataclass
class ChainBreak:
    event_id: int
    reason: str


def audit_chain_verify(*, batch_size: int = 2000) -> tuple[int, ChainBreak | None]:
    """Return how many rows were checked and the first break, if any.

    A row breaks the chain when its hash does not match its own fields (edited),
    or when it does not point at the row before it (deleted, inserted or swapped).
    """
    expected_previous = GENESIS_HASH
    checked = 0
    last_id = 0
    while True:
        rows = list(AuditEvent.objects.filter(id__gt=last_id).order_by("id")[:batch_size])
        if not rows:
            return checked, None
        for row in rows:
            if row.previous_hash != expected_previous:
                return checked, ChainBreak(
                    row.id, "does not follow the row before it (a row was deleted, inserted or moved)"
                )
            if row.hash != chain_hash(row.previous_hash, row):
                return checked, ChainBreak(row.id, "its content does not match its hash (the row was edited)")
            expected_previous = row.hash
            checked += 1
            last_id = row.id
