"""Audit events are hash-chained: each row's hash covers the previous hash and its own fields."""

import pytest

from medportal.audit.models import Action, AuditEvent, EventType, Outcome
from medportal.audit.services import GENESIS_HASH, audit_record, chain_hash


@pytest.mark.django_db
def test_each_event_records_who_what_where_and_chains_to_the_previous(radiologist, rf):
    request = rf.get("/", REMOTE_ADDR="10.1.2.3")
    request.user = radiologist
    first = audit_record(
        event_type=EventType.PATIENT_RECORD,
        action=Action.READ,
        description="Study viewed",
        request=request,
        patient_id="P1",
        study_uid="1.2.3",
        object_type="study",
        object_id=7,
    )
    second = audit_record(
        event_type=EventType.USER_AUTHENTICATION,
        action=Action.EXECUTE,
        description="Login failed",
        outcome=Outcome.MINOR_FAILURE,
        username="mallory",
    )
    assert (first.username, first.role, first.network_address) == ("rita", "radiologist", "10.1.2.3")
    assert (first.patient_id, first.study_uid, first.object_id) == ("P1", "1.2.3", "7")
    assert second.user is None and second.username == "mallory"

    rows = list(AuditEvent.objects.order_by("id"))
    previous = rows[0].previous_hash
    assert previous == GENESIS_HASH or AuditEvent.objects.filter(hash=previous).exists()
    for row in rows:
        assert row.hash == chain_hash(row.previous_hash, row)  # recomputed from what the database holds
    assert second.previous_hash == first.hash
