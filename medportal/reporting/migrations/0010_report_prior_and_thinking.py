"""The prior exam a chest X-ray draft compares with (chosen by the radiologist, or the latest
signed one, or none), and a thinking model's trace, kept apart from the report's text.

Adding columns rebuilds the report table on SQLite, which drops its triggers: they are
created again (medportal.reporting.db_guards)."""

import django.db.models.deletion
from django.db import migrations, models

from medportal.reporting.db_guards import sqlite_guards_install


class Migration(migrations.Migration):
    dependencies = [
        ("imaging", "0002_study_priority_and_worklist_indexes"),
        ("reporting", "0009_report_draft_queue"),
    ]

    operations = [
        migrations.AddField(
            model_name="report",
            name="draft_thinking",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="report",
            name="prior_choice",
            field=models.CharField(
                choices=[
                    ("auto", "Latest signed prior"),
                    ("chosen", "Chosen by the radiologist"),
                    ("none", "No prior"),
                ],
                default="auto",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="report",
            name="prior_study",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="imaging.study",
            ),
        ),
        migrations.RunPython(
            lambda apps, schema_editor: sqlite_guards_install(schema_editor), migrations.RunPython.noop
        ),
    ]
