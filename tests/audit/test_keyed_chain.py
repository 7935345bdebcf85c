"""The keyed chain: seq without gaps, HMAC with a key outside the database, anchors outside it."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from medportal.audit.anchors import anchor_log, anchors_read
from medportal.audit.models import Action, AuditEvent, EventType
from medportal.audit.services import audit_record, chain_hash
from medportal.audit.tasks import audit_anchor


def events(count: int) -> list[AuditEvent]:
    return [
        audit_record(
            event_type=EventType.PATIENT_RECORD,
            action=Action.READ,
            description="Study viewed",
            username=f"user{n}",
            patient_id="P-1",
        )
        for n in range(count)
    ]


def owner_sql(statement: str, params=None) -> None:
    """What the tables' owner (or anyone who got its password) can do: lift the guards, then change rows."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        cursor.execute(statement, params)


@pytest.mark.django_db
def test_events_are_numbered_without_gaps_and_keyed_with_the_key_outside_the_database(settings):
    written = events(5)
    assert [e.seq for e in written] == list(range(written[0].seq, written[0].seq + 5))
    assert all(e.keyed for e in written)
    last = AuditEvent.objects.get(pk=written[-1].pk)
    assert last.hash == chain_hash(last.previous_hash, last)
    settings.MEDPORTAL_AUDIT_KEY = "a key someone guessed"
    assert last.hash != chain_hash(last.previous_hash, last)  # without the key it cannot be recomputed


@pytest.mark.django_db
def test_a_removed_tail_is_found_against_the_anchor(anchor_dir):
    events(10)
    assert audit_anchor() == 10  # the beat's task: the head, appended outside the database
    assert [(a.seq, a.keyed_from) for a in anchors_read()] == [(10, 1)]
    assert audit_anchor() is None  # nothing new: nothing appended
    call_command("audit_verify")
    owner_sql("DELETE FROM audit_auditevent WHERE seq > 7")
    # The chain that is left is consistent in itself: only the anchor knows it was longer.
    with pytest.raises(
        CommandError, match=r"broken at seq 8: the trail ends at seq 7, .* events 8 to 10 were"
    ):
        call_command("audit_verify")


@pytest.mark.django_db
def test_a_truncation_is_found_against_the_anchor(anchor_dir):
    events(3)
    audit_anchor()
    owner_sql("TRUNCATE audit_auditevent")
    with pytest.raises(CommandError, match=r"broken at seq 1: the table is empty \(truncated\)"):
        call_command("audit_verify")


@pytest.mark.django_db
def test_a_deletion_in_the_middle_is_named_by_its_seq():
    written = events(6)
    owner_sql("DELETE FROM audit_auditevent WHERE id = %s", [written[2].pk])
    with pytest.raises(
        CommandError, match=rf"broken at seq 3 \(event id {written[3].pk}\): event 3 was deleted"
    ):
        call_command("audit_verify")


@pytest.mark.django_db
def test_a_trail_rewritten_without_the_key_from_its_first_row_is_found_there(anchor_dir):
    """Rewritten as if it were all from before the key (plain SHA-256, unkeyed): the anchors
    remember where keyed rows begin."""
    from bench.audit_tamper import _rechain

    written = events(4)
    audit_anchor()
    owner_sql("UPDATE audit_auditevent SET username = 'eve' WHERE id = %s", [written[0].pk])
    with connection.cursor() as cursor:
        _rechain(cursor, 1, key=None)
    with pytest.raises(CommandError, match=r"broken at seq 1 .*unkeyed row after the switch"):
        call_command("audit_verify")


@pytest.mark.django_db
def test_a_forged_anchor_line_is_refused(anchor_dir):
    events(2)
    audit_anchor()
    with anchor_log().open("a") as log:
        log.write(
            json.dumps({"seq": 1, "hash": "0" * 64, "at": "2026-01-01T00:00:00+00:00", "mac": "00"}) + "\n"
        )
    with pytest.raises(CommandError, match="line 2 of .* was not written with the audit key"):
        call_command("audit_verify")
