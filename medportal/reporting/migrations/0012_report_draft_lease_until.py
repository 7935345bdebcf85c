"""The lease of a draft in progress (medportal.reporting.services.leases).

Adding a column rebuilds the report table on SQLite, which drops its triggers: they are
created again (medportal.reporting.db_guards)."""

from django.db import migrations, models

from medportal.reporting.db_guards import sqlite_guards_install


class Migration(migrations.Migration):
    dependencies = [("reporting", "0011_signed_content")]

    operations = [
        migrations.AddField(
            model_name="report",
            name="draft_lease_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(
            lambda apps, schema_editor: sqlite_guards_install(schema_editor), migrations.RunPython.noop
        ),
    ]
