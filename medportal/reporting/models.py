from django.conf import settings
from django.db import models

from medportal.imaging.models import Study


class ReportStatus(models.TextChoices):
    RECEIVED = "received", "Awaiting draft"
    QUEUED = "queued", "Draft queued"
    DRAFTING = "drafting", "Drafting"
    DRAFTED = "drafted", "Drafted"
    FAILED = "failed", "Draft failed"
    SIGNED = "signed", "Signed"


class SignedReportError(Exception):
    """A signed report was about to change."""


class Report(models.Model):
    """The report of one study: the AI draft, the radiologist's text, the sign-off.

    Changes go through ``medportal.reporting.services``; once signed, the row
    is immutable (here, and by a database trigger).
    """

    study = models.OneToOneField(Study, on_delete=models.PROTECT, related_name="report")
    status = models.CharField(max_length=16, choices=ReportStatus.choices, default=ReportStatus.RECEIVED)
    # Each draft request is a new attempt; a worker only writes to the attempt it claimed.
    attempt = models.PositiveIntegerField(default=0)
    draft_text = models.TextField(blank=True)
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=0)
    failure_reason = models.TextField(blank=True)

    model_id = models.CharField(max_length=200, blank=True)
    model_revision = models.CharField(max_length=100, blank=True)
    prompt = models.TextField(blank=True)
    generation_params = models.JSONField(default=dict, blank=True)
    preprocessing = models.JSONField(default=dict, blank=True)
    time_to_first_token_ms = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)
    generated_tokens = models.PositiveIntegerField(null=True, blank=True)
    draft_requested_at = models.DateTimeField(null=True, blank=True)
    draft_started_at = models.DateTimeField(null=True, blank=True)
    draft_finished_at = models.DateTimeField(null=True, blank=True)

    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="signed_reports",
    )
    signed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Report {self.pk} ({self.get_status_display()})"

    def save(self, *args, **kwargs):
        if self.pk and Report.objects.filter(pk=self.pk, status=ReportStatus.SIGNED).exists():
            raise SignedReportError("a signed report cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if Report.objects.filter(pk=self.pk, status=ReportStatus.SIGNED).exists():
            raise SignedReportError("a signed report cannot be deleted")
        return super().delete(*args, **kwargs)

    @property
    def stream_group(self) -> str:
        return f"report-{self.pk}"

    @property
    def is_signed(self) -> bool:
        return self.status == ReportStatus.SIGNED


class ReportVersion(models.Model):
    """Every saved text of a report, AI draft first. Never changed after it is written."""

    AI = "ai"
    EDIT = "edit"

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    source = models.CharField(max_length=8, choices=[(AI, "AI draft"), (EDIT, "Edit")])
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["report", "number"], name="unique_report_version")]

    def __str__(self) -> str:
        return f"Report {self.report_id} v{self.number}"
