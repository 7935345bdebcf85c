from django.db import models
from django.utils import timezone

from medportal.reporting.models import Addendum, Report


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    # The receiver acknowledged it with an error (AE/AR): sending it again as is would not help.
    REJECTED = "rejected", "Failed: the receiver answered with an error"
    # Never acknowledged after every attempt (no connection, no ACK in time).
    FAILED = "failed", "Failed: not delivered"


FAILED_STATES = (MessageStatus.REJECTED, MessageStatus.FAILED)


class OutboundMessage(models.Model):
    """One HL7 message to the EHR: the ORU^R01 of a report's signature or of an addendum's.

    Created when the signature commits (or by the outbox sweep, should that be lost), sent by
    the interfaces worker. ``claimed_until`` is a lease: the worker sending it holds it; a crashed
    worker's lease runs out and the sweep sends the message again.
    """

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="hl7_messages")
    addendum = models.ForeignKey(
        Addendum, null=True, blank=True, on_delete=models.PROTECT, related_name="hl7_messages"
    )
    # The signature's time: a report's messages go out in this order (the final before its corrections).
    signed_at = models.DateTimeField()
    control_id = models.CharField("message control id", max_length=20, unique=True)
    payload = models.TextField()
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    ack_code = models.CharField("ACK code", max_length=2, blank=True)
    ack_message = models.TextField("ACK", blank=True)
    destination = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["report"],
                condition=models.Q(addendum__isnull=True),
                name="hl7_one_message_per_report_signature",
            ),
            models.UniqueConstraint(fields=["addendum"], name="hl7_one_message_per_addendum"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="hl7_message_due")]

    def __str__(self) -> str:
        return f"HL7 {self.control_id} ({self.get_status_display()})"

    @property
    def is_failed(self) -> bool:
        return self.status in FAILED_STATES

    @property
    def result_status(self) -> str:
        """OBR-25 of the message: F for the report's signature, C for an addendum's."""
        return "C" if self.addendum_id else "F"
