"""Database-level guard for the lifecycle of 0006: an amended report is as immutable as a
signed one, except for the one change an addendum makes (status signed → amended, nothing
else); addenda are never changed or deleted."""

from django.db import migrations

POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION medportal_report_immutable() RETURNS trigger AS $$
       BEGIN
         IF TG_TABLE_NAME IN ('reporting_reportversion', 'reporting_addendum') THEN
           RAISE EXCEPTION '% row % is immutable', TG_TABLE_NAME, OLD.id USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         IF OLD.status IN ('signed', 'amended') THEN
           IF TG_OP = 'UPDATE' AND NEW.status = 'amended'
              AND (to_jsonb(NEW) - 'status') = (to_jsonb(OLD) - 'status') THEN
             RETURN NEW;
           END IF;
           RAISE EXCEPTION '% row % is immutable', TG_TABLE_NAME, OLD.id USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER report_addendum_immutable BEFORE UPDATE OR DELETE ON reporting_addendum
       FOR EACH ROW EXECUTE FUNCTION medportal_report_immutable()""",
]
POSTGRESQL_REVERSE = ["DROP TRIGGER report_addendum_immutable ON reporting_addendum"]

SQLITE_REVERSE = [
    "DROP TRIGGER report_signed_no_update",
    "DROP TRIGGER report_signed_no_delete",
    "DROP TRIGGER report_addendum_no_update",
    "DROP TRIGGER report_addendum_no_delete",
    """CREATE TRIGGER report_signed_no_update BEFORE UPDATE ON reporting_report
       WHEN OLD.status = 'signed'
       BEGIN SELECT RAISE(ABORT, 'signed report is immutable'); END""",
    """CREATE TRIGGER report_signed_no_delete BEFORE DELETE ON reporting_report
       WHEN OLD.status = 'signed'
       BEGIN SELECT RAISE(ABORT, 'signed report is immutable'); END""",
]


def _sqlite(schema_editor) -> list[str]:
    # SQLite has no row comparison: list every other column of the table as it is now.
    with schema_editor.connection.cursor() as cursor:
        columns = [
            c.name
            for c in schema_editor.connection.introspection.get_table_description(cursor, "reporting_report")
            if c.name != "status"
        ]
    unchanged = " AND ".join(f'NEW."{c}" IS OLD."{c}"' for c in columns)
    return [
        "DROP TRIGGER report_signed_no_update",
        "DROP TRIGGER report_signed_no_delete",
        f"""CREATE TRIGGER report_signed_no_update BEFORE UPDATE ON reporting_report
            WHEN OLD.status IN ('signed', 'amended') AND NOT (NEW.status = 'amended' AND {unchanged})
            BEGIN SELECT RAISE(ABORT, 'signed report is immutable'); END""",
        """CREATE TRIGGER report_signed_no_delete BEFORE DELETE ON reporting_report
           WHEN OLD.status IN ('signed', 'amended')
           BEGIN SELECT RAISE(ABORT, 'signed report is immutable'); END""",
        """CREATE TRIGGER report_addendum_no_update BEFORE UPDATE ON reporting_addendum
           BEGIN SELECT RAISE(ABORT, 'addenda are immutable'); END""",
        """CREATE TRIGGER report_addendum_no_delete BEFORE DELETE ON reporting_addendum
           BEGIN SELECT RAISE(ABORT, 'addenda are immutable'); END""",
    ]


def _forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": POSTGRESQL, "sqlite": _sqlite(schema_editor) if vendor == "sqlite" else []}
    for statement in statements.get(vendor, []):
        schema_editor.execute(statement, params=None)


def _reverse(apps, schema_editor):
    statements = {"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE}
    for statement in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("reporting", "0006_lifecycle_addenda_templates")]

    operations = [migrations.RunPython(_forward, _reverse)]
