"""The audit trail is append-only in the database and its hash chain exposes tampering."""

from __future__ import annotations

import random
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction

from medportal.audit.models import Action, AuditEvent, EventType
from medportal.audit.services import audit_record
from medportal.audit.verify import audit_chain_verify

WRITERS = 8
EVENTS = 10_000


def write_events(count: int, writer: int) -> None:
    try:
        for n in range(count):
            audit_record(
                event_type=EventType.INSTANCES_ACCESSED,
                action=Action.READ,
                description="Image viewed",
                username=f"writer{writer}",
                patient_id=f"P{n % 37}",
                object_type="instance",
                object_id=n,
            )
    finally:
        connections.close_all()


@pytest.fixture(scope="module")
def ten_thousand_events(django_db_setup, django_db_blocker):
    """10,000 events from concurrent writers, committed (kept for the module, removed after)."""
    with django_db_blocker.unblock():
        threads = [threading.Thread(target=write_events, args=(EVENTS // WRITERS, w)) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        yield list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE audit_auditevent")


@pytest.mark.django_db
def test_the_database_refuses_to_change_or_delete_an_event(radiologist):
    event = audit_record(
        event_type=EventType.PATIENT_RECORD, action=Action.READ, description="x", user=radiologist
    )
    for statement in (
        "UPDATE audit_auditevent SET username = 'eve' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as c,
        ):
            c.execute(statement, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).username == "rita"


@pytest.mark.django_db
def test_events_from_concurrent_writers_form_one_clean_chain(ten_thousand_events):
    assert len(ten_thousand_events) == EVENTS
    checked, broken = audit_chain_verify()
    assert (checked, broken) == (EVENTS, None)
    call_command("audit_verify")


def tamper(kind: str, ids: list[int], rng: random.Random) -> int:
    """Tamper with the trigger disabled, as an attacker with database access would; returns the id
    of the row where the chain must break."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only")
        if kind == "edit":
            target = rng.choice(ids)
            field = rng.choice(["username", "patient_id", "description", "object_id"])
            cursor.execute(f"UPDATE audit_auditevent SET {field} = {field} || 'x' WHERE id = %s", [target])
            return target
        if kind == "delete":
            position = rng.randrange(len(ids) - 1)
            cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [ids[position]])
            return ids[position + 1]
        first, second = sorted(rng.sample(range(len(ids)), 2))
        a, b = ids[first], ids[second]
        cursor.execute("UPDATE audit_auditevent SET id = -1 WHERE id = %s", [a])
        cursor.execute("UPDATE audit_auditevent SET id = %s WHERE id = %s", [a, b])
        cursor.execute("UPDATE audit_auditevent SET id = %s WHERE id = -1", [b])
        return a


@pytest.mark.django_db
def test_each_of_100_tamperings_is_found_at_the_exact_row(ten_thousand_events):
    rng = random.Random(20261127)
    ids = ten_thousand_events
    for attempt in range(100):
        kind = ("edit", "delete", "swap")[attempt % 3]
        sid = transaction.savepoint()
        expected = tamper(kind, ids, rng)
        _, broken = audit_chain_verify()
        with pytest.raises(CommandError, match=f"broken at event {expected}:"):
            call_command("audit_verify")
        transaction.savepoint_rollback(sid)  # undo the tampering (and re-enable the trigger)
        assert broken is not None and broken.event_id == expected, (kind, expected, broken)
