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
    # Each time a worker claims the current attempt (a redelivery after a crash claims again).
    draft_claim = models.PositiveIntegerField(default=0)
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
    # The Celery queue the current draft was sent to (its model's GPU pool): the Workers
    # page tells how long drafts have waited on each queue.
    draft_queue = models.CharField(max_length=100, blank=True)
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

    # The radiologist reading it: set by a claim (conditional UPDATE) or by an admin's assignment.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_reports",
    )
    assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status"], name="report_status"),
            # "Next study" looks only at open, unclaimed reports: a small slice of the table.
            models.Index(
                fields=["study"],
                name="report_open_unclaimed",
                condition=models.Q(assigned_to__isnull=True) & ~models.Q(status="signed"),
            ),
        ]

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

    @property
    def ai_draft_state(self) -> str:
        """The AI draft's own state, apart from the report's: one of ``AI_DRAFT_LABELS``."""
        if self.status in (ReportStatus.QUEUED, ReportStatus.DRAFTING, ReportStatus.FAILED):
            return str(self.status)
        if self.model_id:  # written only when a draft finishes
            return "ready"
        # A draft was tried, failed, and the report was written by hand since.
        return "failed" if self.attempt else "none"

    @property
    def ai_draft_label(self) -> str:
        return AI_DRAFT_LABELS[self.ai_draft_state]


AI_DRAFT_LABELS = {
    "none": "Not requested",
    "queued": "Queued",
    "drafting": "Drafting",
    "ready": "Ready",
    "failed": "Failed",
}


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
