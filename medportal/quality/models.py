from django.conf import settings
from django.db import models

from medportal.reporting.models import Report


class DraftOutcome(models.Model):
    """How far the radiologist's signed text moved from the AI draft, for one signed report.

    Written once the signature commits (``medportal.quality.receivers``) or by the
    ``quality_backfill`` command; derived from the signed report, so writing it again
    gives the same row. Only reports that had an AI draft have one.
    """

    report = models.OneToOneField(Report, on_delete=models.PROTECT, related_name="draft_outcome")
    # The model that wrote the draft compared (copied: a report keeps them, but the
    # aggregates should not need a join per row).
    model_id = models.CharField(max_length=200)
    model_revision = models.CharField(max_length=100, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    radiologist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()
    # When the AI draft compared was written (its version's time).
    draft_finished_at = models.DateTimeField()
    seconds_to_sign = models.FloatField()
    # The report versions compared: the last AI draft and the signed text.
    draft_version = models.PositiveIntegerField()
    signed_version = models.PositiveIntegerField()
    draft_chars = models.PositiveIntegerField()
    signed_chars = models.PositiveIntegerField()
    # Levenshtein distance (characters) between the normalised texts, and 1 - distance / longer length.
    edit_distance = models.PositiveIntegerField()
    similarity = models.FloatField()
    accepted_unchanged = models.BooleanField()
    recorded_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["signed_at"], name="draft_outcome_signed_at")]

    def __str__(self) -> str:
        return f"Draft outcome of report {self.report_id}"

    @property
    def model_version(self) -> str:
        return model_version_label(self.model_id, self.model_revision)


def model_version_label(model_id: str, model_revision: str) -> str:
    return f"{model_id} @ {model_revision}" if model_revision else model_id
