"""Database-level guard: a signed report and every report version are immutable,
whatever path (ORM, admin, raw SQL) tries to change them."""

from django.db import migrations

SQLITE = [
    """CREATE TRIGGER report_signed_no_update BEFORE UPDATE ON reporting_report
       WHEN OLD.status = 'signed'
       BEGIN SELECT RAISE(ABORT, 'signed report is immutable'); END""",
    """CREATE TRIGGER report_signed_no_delete BEFORE DELETE ON reporting_report
       WHEN OLD.status = 'signed'
       BEGIN SELECT RAISE(ABORT, 'signed report is immutable'); END""",
    """CREATE TRIGGER report_version_no_update BEFORE UPDATE ON reporting_reportversion
       BEGIN SELECT RAISE(ABORT, 'report versions are immutable'); END""",
    """CREATE TRIGGER report_version_no_delete BEFORE DELETE ON reporting_reportversion
       BEGIN SELECT RAISE(ABORT, 'report versions are immutable'); END""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER report_signed_no_update",
    "DROP TRIGGER report_signed_no_delete",
    "DROP TRIGGER report_version_no_update",
    "DROP TRIGGER report_version_no_delete",
]

POSTGRESQL = [
    """CREATE FUNCTION medportal_report_immutable() RETURNS trigger AS $$
       BEGIN
         IF TG_TABLE_NAME = 'reporting_reportversion' OR OLD.status = 'signed' THEN
           RAISE EXCEPTION '% row % is immutable', TG_TABLE_NAME, OLD.id USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER report_signed_immutable BEFORE UPDATE OR DELETE ON reporting_report
       FOR EACH ROW EXECUTE FUNCTION medportal_report_immutable()""",
    """CREATE TRIGGER report_version_immutable BEFORE UPDATE OR DELETE ON reporting_reportversion
       FOR EACH ROW EXECUTE FUNCTION medportal_report_immutable()""",
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER report_signed_immutable ON reporting_report",
    "DROP TRIGGER report_version_immutable ON reporting_reportversion",
    "DROP FUNCTION medportal_report_immutable()",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("reporting", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE, "postgresql": POSTGRESQL}),
            _run({"sqlite": SQLITE_REVERSE, "postgresql": POSTGRESQL_REVERSE}),
        )
    ]
