"""Report.assigned_to / assigned_at (claim, release, assign) and the worklist's report indexes."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reporting', '0003_fix_immutable_trigger'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='report',
            name='assigned_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='report',
            name='assigned_to',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='assigned_reports', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='report',
            index=models.Index(fields=['status'], name='report_status'),
        ),
        migrations.AddIndex(
            model_name='report',
            index=models.Index(condition=models.Q(('assigned_to__isnull', True), models.Q(('status', 'signed'), _negated=True)), fields=['study'], name='report_open_unclaimed'),
        ),
    ]
