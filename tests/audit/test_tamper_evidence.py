"""The audit trail is append-only in the database and its hash chain exposes tampering."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction

from bench.audit_tamper import tamper_campaign
from medportal.audit.anchors import audit_anchor_write
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
def test_the_database_refuses_to_change_delete_or_truncate_events(radiologist):
    with connection.cursor() as c:
        # The test database lifts the TRUNCATE guard for Django's flush between tests (conftest).
        c.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_no_truncate")
    event = audit_record(
        event_type=EventType.PATIENT_RECORD, action=Action.READ, description="x", user=radiologist
    )
    with connection.cursor() as c:
        c.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the user's foreign key checked now, not at commit
    for statement in (
        "UPDATE audit_auditevent SET username = 'eve' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
        "TRUNCATE audit_auditevent",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as c,
        ):
            c.execute(statement, [event.pk] if "%s" in statement else None)
    assert AuditEvent.objects.get(pk=event.pk).username == "rita"


@pytest.mark.django_db
def test_events_from_concurrent_writers_form_one_clean_chain(ten_thousand_events):
    assert len(ten_thousand_events) == EVENTS
    checked, broken = audit_chain_verify()
    assert (checked, broken) == (EVENTS, None)
    call_command("audit_verify")


@pytest.mark.django_db
def test_each_of_100_varied_tamperings_is_found_at_the_exact_row(ten_thousand_events, capsys):
    """Edits, deletions in the middle, reordering, tail deletions, truncation, chains recomputed
    without the key or with a guessed one, forged rows: bench/audit_tamper.py's campaign."""
    assert audit_anchor_write() is not None  # the head as the beat would have anchored it
    detected, misses = tamper_campaign(attempts=100)
    with capsys.disabled():
        print(f"\ntamper_detected={detected}/100")
    assert (detected, misses) == (100, [])
    assert audit_chain_verify() == (EVENTS, None)  # every tampering was undone


@pytest.mark.django_db
def test_audit_verify_names_the_seq_and_row_of_an_edit(ten_thousand_events):
    target = ten_thousand_events[1234]
    seq = AuditEvent.objects.get(pk=target).seq
    sid = transaction.savepoint()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only")
        cursor.execute("UPDATE audit_auditevent SET username = 'eve' WHERE id = %s", [target])
    with pytest.raises(CommandError, match=rf"broken at seq {seq} \(event id {target}\): its content"):
        call_command("audit_verify")
    transaction.savepoint_rollback(sid)
