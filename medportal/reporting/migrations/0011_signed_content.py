"""Signed reports frozen whole (medportal.reporting.freezing): the SignedContent table, guarded
by the database like addenda, and a snapshot of every report signed before it, taken from the
rows as they are now (``backfilled``), each vouched for by an audit event with its hash."""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone

from medportal.audit.services import audit_event_append
from medportal.reporting.db_guards import postgresql_guards_install, sqlite_guards_install
from medportal.reporting.freezing import addendum_content, content_freeze, report_content


def _vouch(AuditEvent, report, sha256: str, description: str, **detail) -> None:
    study = report.study
    event = AuditEvent(
        occurred_at=timezone.now(),
        event_type="110110",  # Patient record
        action="C",
        outcome=0,
        description=description,
        username="medportal",
        patient_id=study.patient.patient_id,
        study_uid=study.study_uid,
        accession_number=study.accession_number,
        object_type="report",
        object_id=str(report.pk),
        detail={"content_sha256": sha256, "backfilled": True, **detail},
    )
    audit_event_append(event, model=AuditEvent)


def _freeze_signed_reports(apps, schema_editor):
    Report = apps.get_model("reporting", "Report")
    Addendum = apps.get_model("reporting", "Addendum")
    SignedContent = apps.get_model("reporting", "SignedContent")
    Series = apps.get_model("imaging", "Series")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    signed = Report.objects.filter(status__in=["signed", "amended"]).select_related(
        "study__patient", "signed_by"
    )
    for report in signed.order_by("pk"):
        content = report_content(
            report, signer=report.signed_by, signed_at=report.signed_at, series_model=Series
        )
        row = content_freeze(report=report, content=content, model=SignedContent, backfilled=True)
        _vouch(AuditEvent, report, row.sha256, "Signed report frozen (signed before signatures were frozen)")
        for addendum in Addendum.objects.filter(report=report).select_related("signed_by").order_by("number"):
            row = content_freeze(
                report=report,
                addendum=addendum,
                content=addendum_content(addendum),
                model=SignedContent,
                backfilled=True,
            )
            _vouch(
                AuditEvent,
                report,
                row.sha256,
                "Addendum frozen (signed before signatures were frozen)",
                addendum=addendum.number,
            )


def _guards(apps, schema_editor):
    postgresql_guards_install(schema_editor)
    sqlite_guards_install(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0010_report_prior_and_thinking"),
        ("imaging", "0002_study_priority_and_worklist_indexes"),
        ("audit", "0003_keyed_chain"),
    ]

    operations = [
        migrations.CreateModel(
            name="SignedContent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("content", models.TextField()),
                ("sha256", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField()),
                ("backfilled", models.BooleanField(default=False)),
                (
                    "addendum",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="signed_content",
                        to="reporting.addendum",
                    ),
                ),
                (
                    "report",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="signed_contents",
                        to="reporting.report",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("addendum__isnull", True)),
                        fields=("report",),
                        name="one_signed_content_per_report",
                    )
                ],
            },
        ),
        migrations.RunPython(_freeze_signed_reports, migrations.RunPython.noop),
        migrations.RunPython(_guards, migrations.RunPython.noop),
    ]
