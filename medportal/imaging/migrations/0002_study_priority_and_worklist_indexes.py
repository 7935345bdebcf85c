"""Study.priority (STAT / urgent / routine, stored as a rank) and the indexes the worklist's
sorts, filters and search use (bench/worklist.py prints the EXPLAIN ANALYZE that shows them used)."""

from django.db import DatabaseError, migrations, models, transaction

TRIGRAM_INDEX = "patient_name_trgm"


def name_trigram_index(apps, schema_editor):
    """PostgreSQL: a trigram index for "name contains", matching Django's UPPER(name::text) LIKE."""
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError:
        # No privilege to add the extension: name search still works, by scanning names.
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON imaging_patient"
        " USING gin ((UPPER(name::text)) gin_trgm_ops)"
    )


def drop_name_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ('imaging', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='study',
            name='priority',
            field=models.PositiveSmallIntegerField(choices=[(1, 'STAT'), (2, 'Urgent'), (3, 'Routine')], default=3),
        ),
        migrations.AddIndex(
            model_name='study',
            index=models.Index(fields=['priority', 'received_at', 'id'], name='study_priority_received'),
        ),
        migrations.AddIndex(
            model_name='study',
            index=models.Index(fields=['received_at', 'id'], name='study_received_id'),
        ),
        migrations.AddIndex(
            model_name='study',
            index=models.Index(fields=['modality', 'received_at'], name='study_modality_received'),
        ),
        migrations.AddIndex(
            model_name='study',
            index=models.Index(fields=['study_date'], name='study_date'),
        ),
        migrations.RunPython(name_trigram_index, drop_name_trigram_index),
    ]
