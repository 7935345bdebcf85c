"""Walking the audit chain to find the first row that does not fit, and checking it against
the anchors kept outside the database."""

from __future__ import annotations

from dataclasses import dataclass

from medportal.audit.anchors import AnchorLogError, anchors_read
from medportal.audit.models import AuditEvent
from medportal.audit.services import GENESIS_HASH, chain_hash


@dataclass
class ChainBreak:
    seq: int  # where the trail stops being what was written
    event_id: int | None  # the row found there (None: the rows from there on are gone)
    reason: str


def audit_chain_verify(*, batch_size: int = 2000) -> tuple[int, ChainBreak | None]:
    """Return how many rows were checked and the first break, if any.

    In seq order, each row must have the next seq (a gap: rows were deleted), point at the
    hash of the row before it (deleted, inserted or moved), and match its own hash: keyed
    (HMAC) rows can be recomputed only with the key, and an unkeyed row after the first keyed
    one was written without it. Then every anchor must still be in the table (a removed tail,
    a truncation, or a chain recomputed with the key)."""
    expected_previous, expected_seq, keyed_seen = GENESIS_HASH, 1, False
    checked = 0
    hashes_at: dict[int, str] = {}
    try:
        anchors = anchors_read()
    except AnchorLogError as exc:
        return 0, ChainBreak(0, None, f"the anchor log cannot be trusted: {exc}")
    anchored = {a.seq for a in anchors}
    # From the first keyed row the anchors saw, every row must be keyed.
    keyed_from = min((a.keyed_from for a in anchors if a.keyed_from), default=None)
    while True:
        rows = list(AuditEvent.objects.filter(seq__gte=expected_seq).order_by("seq")[:batch_size])
        if not rows:
            break
        for row in rows:
            must_be_keyed = keyed_seen or (keyed_from is not None and row.seq >= keyed_from)
            broken = _row_break(row, expected_seq, expected_previous, must_be_keyed)
            if broken:
                return checked, broken
            keyed_seen = keyed_seen or row.keyed
            if row.seq in anchored:
                hashes_at[row.seq] = row.hash
            expected_previous, expected_seq = row.hash, row.seq + 1
            checked += 1
    last_seq = expected_seq - 1
    for anchor in anchors:
        if anchor.seq > last_seq:
            what = "the table is empty (truncated)" if last_seq == 0 else f"the trail ends at seq {last_seq}"
            return checked, ChainBreak(
                last_seq + 1,
                None,
                f"{what}, but the anchor of {anchor.at} records seq {anchor.seq}: "
                f"{_events(last_seq + 1, anchor.seq)} removed",
            )
        if hashes_at.get(anchor.seq) != anchor.hash:
            row_id = AuditEvent.objects.filter(seq=anchor.seq).values_list("id", flat=True).first()
            return checked, ChainBreak(
                anchor.seq,
                row_id,
                f"its hash is not the one anchored at {anchor.at} "
                "(the chain was recomputed, with the key, at or before this row)",
            )
    return checked, None


def _row_break(row: AuditEvent, seq: int, previous: str, must_be_keyed: bool) -> ChainBreak | None:
    if row.seq != seq:
        return ChainBreak(seq, row.id, f"{_events(seq, row.seq - 1)} deleted; the next row is seq {row.seq}")
    if row.previous_hash != previous:
        return ChainBreak(
            seq, row.id, "does not follow the row before it (a row was deleted, inserted or moved)"
        )
    if must_be_keyed and not row.keyed:
        return ChainBreak(
            seq, row.id, "an unkeyed row after the switch to keyed hashes (written without the key)"
        )
    if row.hash != chain_hash(row.previous_hash, row):
        how = "edited, or rewritten without the key" if row.keyed else "the row was edited"
        return ChainBreak(seq, row.id, f"its content does not match its hash ({how})")
    return None


def _events(first: int, last: int) -> str:
    return f"event {first} was" if first == last else f"events {first} to {last} were"
