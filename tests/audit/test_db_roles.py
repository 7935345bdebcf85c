"""The application's database role (docker-compose.yml: DATABASE_URL) owns no table and may only
SELECT and INSERT the audit table; ``manage.py medportal_db_grant`` gives it exactly that."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from medportal.audit.models import Action, AuditEvent, EventType
from medportal.audit.services import audit_record


@pytest.fixture
def app_role(db) -> str:
    """A fresh role in the test database's cluster, granted as the compose migrate service does
    (created in the test's transaction: it is gone again afterwards)."""
    role = f"medportal_app_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
    call_command("medportal_db_grant", role)
    return role


def refused(statement: str, params=None) -> str:
    with pytest.raises(DatabaseError) as raised, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
    return str(raised.value)


@pytest.mark.django_db
def test_the_application_role_inserts_and_reads_the_audit_trail_but_cannot_change_it(app_role):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"SET ROLE {app_role}")
    try:
        event = audit_record(
            event_type=EventType.PATIENT_RECORD,
            action=Action.READ,
            description="Study viewed",
            username="rita",
        )
        assert AuditEvent.objects.filter(pk=event.pk).values_list("username", flat=True).get() == "rita"
        for statement in (
            "UPDATE audit_auditevent SET username = 'eve' WHERE id = %s",
            "DELETE FROM audit_auditevent WHERE id = %s",
            "TRUNCATE audit_auditevent",
            "ALTER TABLE audit_auditevent DISABLE TRIGGER USER",
        ):
            message = refused(statement, [event.pk] if "%s" in statement else None)
            assert "permission denied" in message or "must be owner" in message, message
        # Other tables it reads and writes as the application needs.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE auth_user SET last_name = last_name")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tableowner = %s", [app_role])
        assert cursor.fetchone() == (0,)
    assert AuditEvent.objects.get(pk=event.pk).username == "rita"


@pytest.mark.django_db
def test_a_role_that_owns_tables_is_not_granted_as_the_application_role():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
    with pytest.raises(CommandError, match="must own no table"):
        call_command("medportal_db_grant", owner)
