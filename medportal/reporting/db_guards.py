"""The database's own guard on signed reports (SQLite side; PostgreSQL's is a trigger
function that survives schema changes, see migrations 0002, 0003 and 0007).

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
    ]


def sqlite_guards_install(schema_editor) -> None:
    """(Re)create the SQLite triggers over the tables as they are now. No-op elsewhere."""
    connection = schema_editor.connection
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        columns = [c.name for c in connection.introspection.get_table_description(cursor, "reporting_report")]
    for name in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)
    for statement in _statements(columns):
        schema_editor.execute(statement, params=None)
