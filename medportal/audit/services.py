"""Writing audit events. Every PHI-touching path calls ``audit_record``.

Each event carries ``seq`` (1, 2, 3, ... without gaps) and ``hash``: HMAC-SHA256, keyed with
MEDPORTAL_AUDIT_KEY (kept outside the database), over the previous event's hash and this
event's fields including its seq. Rows written before the key existed (``keyed`` false) keep
their plain SHA-256 chain; the first keyed row covers the last of them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from medportal.audit.actors import process_actor
from medportal.audit.models import Action, AuditEvent, EventType, Outcome

GENESIS_HASH = "0" * 64
# Arbitrary key for PostgreSQL's advisory lock that serialises chain appends.
_CHAIN_LOCK_KEY = 0x4D454450


def client_address(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def _role_of(user: Any) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    names = sorted(user.groups.values_list("name", flat=True))
    if user.is_superuser and "admin" not in names:
        names.insert(0, "admin")
    return ",".join(names)


def canonical_row(event: AuditEvent) -> bytes:
    """The fields a row's hash covers, in a fixed order and encoding (a keyed row: its seq too)."""
    fields = {
        "occurred_at": event.occurred_at.isoformat(),
        "event_type": event.event_type,
        "action": event.action,
        "outcome": int(event.outcome),
        "description": event.description,
        "user_id": event.user_id,
        "username": event.username,
        "role": event.role,
        "is_requestor": event.is_requestor,
        "network_address": event.network_address,
        "patient_id": event.patient_id,
        "study_uid": event.study_uid,
        "accession_number": event.accession_number,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "detail": event.detail,
    }
    if event.keyed:
        fields["seq"] = event.seq
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode()


def audit_key() -> bytes:
    return settings.MEDPORTAL_AUDIT_KEY.encode()


def chain_hash(previous_hash: str, event: AuditEvent) -> str:
    """The row's hash: keyed (HMAC-SHA256) for rows written since the key, plain SHA-256 before."""
    message = previous_hash.encode() + canonical_row(event)
    if event.keyed:
        return hmac.new(audit_key(), message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


def audit_record(
    *,
    event_type: EventType,
    action: Action,
    description: str,
    outcome: Outcome = Outcome.SUCCESS,
    request: HttpRequest | None = None,
    user: Any = None,
    username: str = "",
    network_address: str | None = None,
    patient_id: str = "",
    study_uid: str = "",
    accession_number: str = "",
    object_type: str = "",
    object_id: str | int = "",
    detail: dict | None = None,
) -> AuditEvent:
    """Append one event to the hash chain. Who and where default to the request's."""
    if user is None and request is not None:
        user = getattr(request, "user", None)
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    event = AuditEvent(
        occurred_at=timezone.now(),
        event_type=event_type,
        action=action,
        outcome=outcome,
        description=description[:200],
        user=user if authenticated else None,
        # No person: the process itself (a worker, the interfaces worker) is the actor.
        username=(user.get_username() if authenticated else username or process_actor())[:150],
        role=_role_of(user),
        network_address=network_address or client_address(request),
        patient_id=patient_id or "",
        study_uid=study_uid or "",
        accession_number=accession_number or "",
        object_type=object_type,
        object_id=str(object_id),
        detail=detail or {},
        keyed=True,
    )
    return audit_event_append(event)


def audit_event_append(event, *, model=AuditEvent):
    """Give ``event`` the next seq and its keyed hash, and insert it. ``model``: a migration's
    historical AuditEvent, for events a migration writes."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        # SQLite serialises writers already (IMMEDIATE transactions).
        last = model.objects.order_by("-seq").values_list("seq", "hash").first()
        event.keyed = True
        event.seq, event.previous_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        event.hash = chain_hash(event.previous_hash, event)
        event.save(force_insert=True)
    return event


def audit_application(
    *, description: str, outcome: Outcome = Outcome.SUCCESS, detail: dict | None = None
) -> None:
    """Application activity (DCM 110100): a process of MedPortal started or stopped."""
    audit_record(
        event_type=EventType.APPLICATION_ACTIVITY,
        action=Action.EXECUTE,
        description=description,
        outcome=outcome,
        username="medportal",
        detail=detail,
    )
