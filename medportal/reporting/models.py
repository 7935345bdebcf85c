from django.conf import settings
from django.db import models

from medportal.imaging.models import Study
from medportal.reporting.lifecycle import FINAL, OPEN, TRANSITIONS, ReportStatus

__all__ = [
    "Addendum",
    "Report",
    "ReportStatus",
    "ReportTemplate",
    "ReportVersion",
    "SignedContent",
    "SignedReportError",
]


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
    # Technique and Comparison are used where the report's template has them.
    technique = models.TextField(blank=True)
    comparison = models.TextField(blank=True)
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=0)
    failure_reason = models.TextField(blank=True)
    cancel_reason = models.TextField(blank=True)
    # The radiologist's extra instruction for the current draft ("regenerate, comparing with ...").
    draft_instruction = models.TextField(blank=True)
    # The prior exam a chest X-ray draft compares with (medportal.reporting.priors): "auto" takes
    # the latest signed one, "chosen" is ``prior_study`` as the radiologist chose it, "none" none.
    prior_choice = models.CharField(
        max_length=8,
        choices=[
            ("auto", "Latest signed prior"),
            ("chosen", "Chosen by the radiologist"),
            ("none", "No prior"),
        ],
        default="auto",
    )
    prior_study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # The model's thinking before its answer (a thinking model): provenance only, never report text.
    draft_thinking = models.TextField(blank=True)

    # The template the draft was written with (its prompt instruction is part of ``prompt``),
    # and its name at the time, kept even if the template is renamed later.
    template = models.ForeignKey(
        "ReportTemplate", null=True, blank=True, on_delete=models.PROTECT, related_name="reports"
    )
    template_name = models.CharField(max_length=200, blank=True)

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
    # While drafting: until when the worker that claimed the draft is known to be alive (it
    # renews this); past it, the sweep sends the draft to a worker again (services.leases).
    draft_lease_until = models.DateTimeField(null=True, blank=True)

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
                condition=models.Q(assigned_to__isnull=True, status__in=sorted(OPEN)),
            ),
        ]

    def __str__(self) -> str:
        return f"Report {self.pk} ({self.get_status_display()})"

    def save(self, *args, **kwargs):
        if self.pk and Report.objects.filter(pk=self.pk, status__in=FINAL).exists():
            raise SignedReportError("a signed report cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if Report.objects.filter(pk=self.pk, status__in=FINAL).exists():
            raise SignedReportError("a signed report cannot be deleted")
        return super().delete(*args, **kwargs)

    @property
    def stream_group(self) -> str:
        return f"report-{self.pk}"

    @property
    def is_signed(self) -> bool:
        """Signed, with or without addenda: the text is final."""
        return self.status in FINAL

    @property
    def is_editable(self) -> bool:
        return self.status in TRANSITIONS["edit"]

    @property
    def is_signable(self) -> bool:
        return self.status in TRANSITIONS["sign"]

    @property
    def is_open(self) -> bool:
        """Still waiting for a radiologist's signature (not signed, not cancelled)."""
        return not self.is_signed and self.status != ReportStatus.CANCELLED

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
    technique = models.TextField(blank=True)
    comparison = models.TextField(blank=True)
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["report", "number"], name="unique_report_version")]

    def __str__(self) -> str:
        return f"Report {self.report_id} v{self.number}"


class Addendum(models.Model):
    """A correction to a signed report, signed on its own. Never changed after it is written."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="addenda")
    number = models.PositiveIntegerField()
    text = models.TextField()
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["report", "number"]
        constraints = [models.UniqueConstraint(fields=["report", "number"], name="unique_report_addendum")]

    def __str__(self) -> str:
        return f"Addendum {self.number} to report {self.report_id}"


class ReportTemplate(models.Model):
    """A department's report template for a modality and body part: the normal text of each
    section and the instruction added to the AI prompt. Managed by admins; imported from IHE
    MRRT (RSNA RadReport) or written by hand. Blank modality or body part matches any."""

    LOCAL = "local"
    MRRT = "mrrt"

    name = models.CharField(max_length=200)
    modality = models.CharField(
        max_length=16, blank=True, help_text="DICOM modality, e.g. CR, CT; blank: any"
    )
    body_part = models.CharField(
        max_length=64, blank=True, help_text="DICOM Body Part Examined, e.g. CHEST; blank: any"
    )
    has_technique = models.BooleanField(default=False)
    has_comparison = models.BooleanField(default=False)
    technique = models.TextField(blank=True)
    comparison = models.TextField(blank=True)
    findings = models.TextField(blank=True, help_text="Normal findings")
    impression = models.TextField(blank=True, help_text="Normal impression")
    prompt_instruction = models.TextField(blank=True, help_text="Added to the AI draft's instruction")
    source = models.CharField(max_length=8, choices=[(LOCAL, "Written here"), (MRRT, "IHE MRRT import")])
    source_id = models.CharField(max_length=200, blank=True, help_text="The MRRT template's identifier")
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["modality", "body_part", "name"]
        constraints = [
            # The worker picks the most specific active template; two equally specific ones
            # would make the choice arbitrary (checked first in report_templates.library, with a message).
            models.UniqueConstraint(
                fields=["modality", "body_part"],
                condition=models.Q(active=True),
                name="one_active_template_per_modality_body_part",
            )
        ]

    def __str__(self) -> str:
        return self.name


class SignedContent(models.Model):
    """Everything a signed report's outputs show, frozen as it was at a signature: the report's
    own (``addendum`` empty) or an addendum's. ``content`` is canonical JSON (the exact text
    whose SHA-256 is ``sha256``, also in the signature's audit event); PDF, FHIR, DICOM SR,
    HL7 and the API render from it (``medportal.reporting.freezing``). Never changed after it
    is written (here, and by the database)."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="signed_contents")
    addendum = models.OneToOneField(
        Addendum, null=True, blank=True, on_delete=models.PROTECT, related_name="signed_content"
    )
    content = models.TextField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    # Frozen by the migration that introduced this, from the rows as they were then (the
    # report was signed before MedPortal froze signatures).
    backfilled = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["report"],
                condition=models.Q(addendum__isnull=True),
                name="one_signed_content_per_report",
            )
        ]

    def __str__(self) -> str:
        return f"Signed content of report {self.report_id}" + (
            f", addendum {self.addendum_id}" if self.addendum_id else ""
        )

    def save(self, *args, **kwargs):
        if self.pk:
            raise SignedReportError("signed content cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise SignedReportError("signed content cannot be deleted")
