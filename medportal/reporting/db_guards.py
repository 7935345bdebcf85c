"""The database's own guard on signed reports: on PostgreSQL a trigger function that survives
schema changes (migrations 0002, 0003, 0007, and ``postgresql_guards_install`` since the frozen
signatures), on SQLite triggers that must be reinstalled (below).

SQLite drops a table's triggers whenever Django rebuilds the table (most ALTERs), so every
migration that changes reporting_report, reporting_reportversion or reporting_addendum on
SQLite must end by calling ``sqlite_guards_install``; tests/reporting/test_sqlite_guards.py
fails when one forgets.
"""

from __future__ import annotations

TRIGGERS = [
    "report_signed_no_update",
    "report_signed_no_delete",
    "report_version_no_update",
    "report_version_no_delete",
    "report_addendum_no_update",
    "report_addendum_no_delete",
    "report_signed_content_no_update",
    "report_signed_content_no_delete",
]


def _statements(columns: list[str]) -> list[str]:
    # SQLite has no row comparison: an addendum may change the status and nothing else.
    unchanged = " AND ".join(f'NEW."{c}" IS OLD."{c}"' for c in columns if c != "status")
    return [
        f"""CREATE TRIGGER report_signed_no_update BEFORE UPDATE ON reporting_report
            WHEN OLD.status IN ('signed', 'amended') AND NOT (NEW.status = 'amended' AND {unchanged})
            BEGIN SELECT RAISE(ABORT, 'signed report is immutable'); END""",
        """CREATE TRIGGER report_signed_no_delete BEFORE DELETE ON reporting_report
           WHEN OLD.status IN ('signed', 'amended')
           BEGIN SELECT RAISE(ABORT, 'signed report is immutable'); END""",
        """CREATE TRIGGER report_version_no_update BEFORE UPDATE ON reporting_reportversion
           BEGIN SELECT RAISE(ABORT, 'report versions are immutable'); END""",
        """CREATE TRIGGER report_version_no_delete BEFORE DELETE ON reporting_reportversion
           BEGIN SELECT RAISE(ABORT, 'report versions are immutable'); END""",
        """CREATE TRIGGER report_addendum_no_update BEFORE UPDATE ON reporting_addendum
           BEGIN SELECT RAISE(ABORT, 'addenda are immutable'); END""",
        """CREATE TRIGGER report_addendum_no_delete BEFORE DELETE ON reporting_addendum
           BEGIN SELECT RAISE(ABORT, 'addenda are immutable'); END""",
        """CREATE TRIGGER report_signed_content_no_update BEFORE UPDATE ON reporting_signedcontent
           BEGIN SELECT RAISE(ABORT, 'signed content is immutable'); END""",
        """CREATE TRIGGER report_signed_content_no_delete BEFORE DELETE ON reporting_signedcontent
           BEGIN SELECT RAISE(ABORT, 'signed content is immutable'); END""",
    ]


# Versions, addenda and frozen signatures never change; a signed report only by an addendum's
# status change (signed -> amended, nothing else).
POSTGRESQL_FUNCTION = """CREATE OR REPLACE FUNCTION medportal_report_immutable() RETURNS trigger AS $$
   BEGIN
     IF TG_TABLE_NAME IN ('reporting_reportversion', 'reporting_addendum', 'reporting_signedcontent') THEN
       RAISE EXCEPTION '% row % is immutable', TG_TABLE_NAME, OLD.id
         USING ERRCODE = 'integrity_constraint_violation';
     END IF;
     IF OLD.status IN ('signed', 'amended') THEN
       IF TG_OP = 'UPDATE' AND NEW.status = 'amended'
          AND (to_jsonb(NEW) - 'status') = (to_jsonb(OLD) - 'status') THEN
         RETURN NEW;
       END IF;
       RAISE EXCEPTION '% row % is immutable', TG_TABLE_NAME, OLD.id
         USING ERRCODE = 'integrity_constraint_violation';
     END IF;
     IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
     RETURN NEW;
   END $$ LANGUAGE plpgsql"""


def postgresql_guards_install(schema_editor) -> None:
    """The trigger function, and its trigger on the frozen signatures. No-op elsewhere."""
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(POSTGRESQL_FUNCTION, params=None)
    schema_editor.execute(
        "DROP TRIGGER IF EXISTS report_signed_content_immutable ON reporting_signedcontent", params=None
    )
    schema_editor.execute(
        """CREATE TRIGGER report_signed_content_immutable BEFORE UPDATE OR DELETE ON reporting_signedcontent
           FOR EACH ROW EXECUTE FUNCTION medportal_report_immutable()""",
        params=None,
    )


def sqlite_guards_install(schema_editor) -> None:
    """(Re)create the SQLite triggers over the tables as they are now. No-op elsewhere."""
    connection = schema_editor.connection
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        columns = [c.name for c in connection.introspection.get_table_description(cursor, "reporting_report")]
        tables = set(connection.introspection.table_names(cursor))
    for name in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)
    for statement in _statements(columns):
        # An earlier migration's call: the tables of later ones do not exist yet.
        if statement.split(" ON ", 1)[1].split()[0] in tables:
            schema_editor.execute(statement, params=None)
