"""The database's own guards on the audit table, and what the application's role may do.

- UPDATE and DELETE are refused by a trigger (audit 0002), TRUNCATE by a statement trigger
  (PostgreSQL; SQLite has no TRUNCATE, and its DELETE trigger covers an unqualified DELETE).
- On PostgreSQL the application should connect as a role that owns no table: it may only
  SELECT and INSERT the audit table (``audit_privileges_restrict``, run by each migration
  that touches the table and by ``manage.py medportal_db_grant``). Triggers can be disabled
  only by the table's owner, the role that runs migrations.

SQLite drops a table's triggers when Django rebuilds it: a migration that changes
audit_auditevent on SQLite ends with ``audit_guards_install``.
"""

from __future__ import annotations

TABLE = "audit_auditevent"

SQLITE = [
    f"""CREATE TRIGGER audit_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
    f"""CREATE TRIGGER audit_no_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
]
SQLITE_TRIGGERS = ["audit_no_update", "audit_no_delete"]

# The function of 0002 raises whatever fired it; as a statement trigger it refuses TRUNCATE.
POSTGRESQL_TRUNCATE = f"""CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION medportal_audit_append_only()"""


def audit_guards_install(schema_editor) -> None:
    """(Re)create the triggers over the table as it is now."""
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        for name in SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)
        for statement in SQLITE:
            schema_editor.execute(statement, params=None)
    elif connection.vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS audit_no_truncate ON {TABLE}", params=None)
        schema_editor.execute(POSTGRESQL_TRUNCATE, params=None)


def audit_privileges_restrict(cursor) -> list[str]:
    """PostgreSQL: no role but the table's owner may UPDATE, DELETE, TRUNCATE the audit table
    (or add triggers and references to it). Returns the roles it took privileges from."""
    cursor.execute(
        """SELECT DISTINCT grantee FROM information_schema.role_table_grants
           WHERE table_name = %s AND table_schema = current_schema()
             AND privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER', 'REFERENCES')
             AND grantee <> (SELECT tableowner FROM pg_tables
                             WHERE tablename = %s AND schemaname = current_schema())""",
        [TABLE, TABLE],
    )
    roles = [row[0] for row in cursor.fetchall()]
    cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON {TABLE} FROM PUBLIC")
    for role in roles:
        cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON {TABLE} FROM {_quote(role)}")
    return roles


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
