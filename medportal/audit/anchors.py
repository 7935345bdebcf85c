"""The chain head, anchored outside the database.

An append-only log (``anchors.log`` in MEDPORTAL_AUDIT_ANCHOR_DIR), one JSON line per anchor:
the last event's seq and hash, the time, the seq of the first keyed event (from there on every
event must be keyed: a trail rewritten without the key cannot pass as written before the key
existed), and an HMAC of the four with the audit key. It is
written by the interfaces worker's beat every MEDPORTAL_AUDIT_ANCHOR_SECONDS (and by
``manage.py audit_anchor``), a process on the application's side: the database and its roles
cannot write it. What it catches that the chain alone cannot: rows removed from the end of
the trail, or the whole table emptied, up to the last anchor (events written after it are
covered by the next one).

Keep the folder where the database's operators cannot write (its own volume, mounted read-only
wherever it is only read), and copy the log off the host as you would a backup.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from medportal.audit.models import AuditEvent

LOG_NAME = "anchors.log"


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: str
    keyed_from: int | None
    line: int  # line number in the log, for messages


def _mac(seq: int, chain_hash: str, at: str, keyed_from: int | None) -> str:
    message = f"{seq}:{chain_hash}:{at}:{keyed_from}".encode()
    return hmac.new(settings.MEDPORTAL_AUDIT_KEY.encode(), message, hashlib.sha256).hexdigest()


def anchor_log() -> Path:
    return Path(settings.MEDPORTAL_AUDIT_ANCHOR_DIR) / LOG_NAME


class AnchorLogError(Exception):
    """A line of the anchor log was not written by MedPortal (its MAC does not match)."""


def anchors_read() -> list[Anchor]:
    """Every anchor in the log, oldest first; AnchorLogError for a line that is not genuine."""
    path = anchor_log()
    if not path.exists():
        return []
    anchors = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
            seq, chain_hash, at, mac = int(record["seq"]), record["hash"], record["at"], record["mac"]
            keyed_from = record.get("keyed_from")
        except (ValueError, KeyError, TypeError):
            raise AnchorLogError(f"line {number} of {path} is not an anchor") from None
        if not hmac.compare_digest(str(mac), _mac(seq, chain_hash, at, keyed_from)):
            raise AnchorLogError(f"line {number} of {path} was not written with the audit key")
        anchors.append(Anchor(seq, chain_hash, at, keyed_from, number))
    return anchors


def audit_anchor_write() -> Anchor | None:
    """Append the chain head (last committed event) to the log, unless it is already there.

    None when the trail is empty or the head did not move since the last anchor."""
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    if head is None:
        return None
    seq, chain_hash = head
    path = anchor_log()
    existing = anchors_read()
    if existing and existing[-1].seq == seq and existing[-1].hash == chain_hash:
        return None
    keyed_from = AuditEvent.objects.filter(keyed=True).order_by("seq").values_list("seq", flat=True).first()
    at = timezone.now().astimezone(datetime.UTC).isoformat(timespec="seconds")
    record = {"seq": seq, "hash": chain_hash, "at": at, "keyed_from": keyed_from}
    line = json.dumps({**record, "mac": _mac(seq, chain_hash, at, keyed_from)})
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # O_APPEND: each write lands at the end, whole; fsync: an anchor survives a crash.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return Anchor(seq, chain_hash, at, keyed_from, len(existing) + 1)
