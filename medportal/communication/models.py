from django.conf import settings
from django.db import models

from medportal.communication.lifecycle import CriticalStatus
from medportal.imaging.models import Patient, Study
from medportal.reporting.models import Report


class Method(models.TextChoices):
    PHONE = "phone", "by phone"
    IN_PERSON = "in_person", "in person"
    SECURE_MESSAGE = "secure_message", "by secure message"
    EMAIL_LINK = "email_link", "by MedPortal e-mail with an acknowledgement link"


class Acknowledgement(models.TextChoices):
    LINK = "link", "opened the link and confirmed"
    READ_BACK = "read_back", "read back to the radiologist"


class Delivery(models.TextChoices):
    NONE = "", "—"
    PENDING = "pending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed: not delivered"


class CriticalResult(models.Model):
    """A finding the radiologist marked critical, and the closed loop of telling someone.

    Changes go through ``medportal.communication.critical``; the audit trail holds every step.
    """

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="critical_results")
    category = models.CharField(max_length=100)
    finding = models.TextField()
    status = models.CharField(max_length=16, choices=CriticalStatus.choices, default=CriticalStatus.AWAITING)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    # Who was told, how, when and by whom (the latest telling; earlier ones are in the audit trail).
    recipient = models.CharField(max_length=200, blank=True)
    method = models.CharField(max_length=16, choices=Method.choices, blank=True)
    recipient_email = models.EmailField(blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    notified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The acknowledgement link's secret part (the link itself is signed with SECRET_KEY).
    link_nonce = models.CharField(max_length=32, blank=True)
    link_base_url = models.CharField(max_length=300, blank=True)
    delivery = models.CharField(max_length=8, choices=Delivery.choices, blank=True)
    delivery_attempts = models.PositiveIntegerField(default=0)
    delivery_error = models.TextField(blank=True)

    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=200, blank=True)
    acknowledgement = models.CharField(max_length=16, choices=Acknowledgement.choices, blank=True)

    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="critical_status_created")]

    def __str__(self) -> str:
        return f"Critical result {self.pk} ({self.get_status_display()})"


class FollowUpStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done: the study arrived"
    CANCELLED = "cancelled", "Cancelled"


class FollowUp(models.Model):
    """A recommendation of a signed report ("CT chest in 3 months"), confirmed by the radiologist."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="follow_ups")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="follow_ups")
    text = models.CharField(max_length=500)
    modality = models.CharField(max_length=16, blank=True, help_text="blank: a study of any modality")
    due_date = models.DateField()
    status = models.CharField(max_length=10, choices=FollowUpStatus.choices, default=FollowUpStatus.OPEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    closed_by_study = models.ForeignKey(
        Study, null=True, blank=True, on_delete=models.PROTECT, related_name="closed_follow_ups"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    overdue_flagged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_date", "id"]
        indexes = [models.Index(fields=["patient", "status"], name="followup_patient_status")]

    def __str__(self) -> str:
        return f"Follow-up {self.pk}: {self.text}"
