"""The queue a draft was sent to (GPU pools: MEDPORTAL_MODEL_QUEUES).

Adding a column rebuilds the report table on SQLite, which drops its triggers: they are
created again (medportal.reporting.db_guards)."""

from django.db import migrations, models

from medportal.reporting.db_guards import sqlite_guards_install


class Migration(migrations.Migration):
    dependencies = [("reporting", "0008_one_active_template_per_modality_body_part")]

    operations = [
        migrations.AddField(
            model_name="report",
            name="draft_queue",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.RunPython(lambda apps, schema_editor: sqlite_guards_install(schema_editor), migrations.RunPython.noop),
    ]
