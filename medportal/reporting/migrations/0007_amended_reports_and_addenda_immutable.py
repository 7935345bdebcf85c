"""Database-level guard for the lifecycle of 0006: an amended report is as immutable as a
signed one, except for the one change an addendum makes (status signed → amended, nothing
else); addenda are never changed or deleted.

On SQLite the triggers of 0002 were lost whenever a later migration rebuilt the tables;
they are all created again here (see medportal.reporting.db_guards)."""

from django.db import migrations

from medportal.reporting.db_guards import sqlite_guards_install

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


def _forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in POSTGRESQL:
            schema_editor.execute(statement, params=None)
    sqlite_guards_install(schema_editor)


def _reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER report_addendum_immutable ON reporting_addendum", params=None)


class Migration(migrations.Migration):
    dependencies = [("reporting", "0006_lifecycle_addenda_templates")]

    operations = [migrations.RunPython(_forward, _reverse)]
