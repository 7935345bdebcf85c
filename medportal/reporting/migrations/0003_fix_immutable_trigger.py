"""PostgreSQL: the trigger function of 0002 read OLD.status on reporting_reportversion,
which has no such column, so a change to a report version failed with
'record "old" has no field "status"' instead of the intended immutability error.
Test the table first, and read OLD.status only on reporting_report."""

from django.db import migrations

POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION medportal_report_immutable() RETURNS trigger AS $$
       BEGIN
         IF TG_TABLE_NAME = 'reporting_reportversion' THEN
           RAISE EXCEPTION '% row % is immutable', TG_TABLE_NAME, OLD.id USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         IF OLD.status = 'signed' THEN
           RAISE EXCEPTION '% row % is immutable', TG_TABLE_NAME, OLD.id USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
]


def _run(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in POSTGRESQL:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("reporting", "0002_signed_reports_immutable")]

    # Reversing keeps the fixed function: it is what 0002 meant.
    operations = [migrations.RunPython(_run, migrations.RunPython.noop)]
