"""The keyed chain: sequence numbers without gaps, HMAC-SHA256 with a key outside the
database, and TRUNCATE refused.

Rows already written keep their plain SHA-256 chain and are numbered in their id order
(``keyed`` false): the first keyed row chains to the last of them, so the switch-over point
is the first row with ``keyed`` true, and a row without the key after it is refused by
audit_verify. The append-only trigger is lifted for the numbering only (the owner's right).
"""

from django.db import migrations, models

from medportal.audit.db_guards import audit_guards_install, audit_privileges_restrict


def _number_existing_rows(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only", params=None)
        schema_editor.execute(
            """UPDATE audit_auditevent SET seq = numbered.n
               FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM audit_auditevent) numbered
               WHERE audit_auditevent.id = numbered.id""",
            params=None,
        )
        schema_editor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_append_only", params=None)
    else:
        for name in ("audit_no_update", "audit_no_delete"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)
        schema_editor.execute(
            """UPDATE audit_auditevent SET seq =
               (SELECT COUNT(*) FROM audit_auditevent earlier WHERE earlier.id <= audit_auditevent.id)""",
            params=None,
        )


def _guards(apps, schema_editor):
    audit_guards_install(schema_editor)
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            audit_privileges_restrict(cursor)


def _unguard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_no_truncate ON audit_auditevent", params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only")]

    operations = [
        migrations.AddField(
            model_name="auditevent", name="seq", field=models.BigIntegerField(null=True)
        ),
        migrations.AddField(
            model_name="auditevent", name="keyed", field=models.BooleanField(default=False)
        ),
        migrations.RunPython(_number_existing_rows, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditevent", name="seq", field=models.BigIntegerField(unique=True)
        ),
        migrations.AlterModelOptions(name="auditevent", options={"ordering": ["seq"]}),
        migrations.RunPython(_guards, _unguard),
    ]
