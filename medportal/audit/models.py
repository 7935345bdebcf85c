from django.conf import settings
from django.db import models


class EventType(models.TextChoices):
    """DICOM audit message event IDs (PS3.15 A.5, DCM codes)."""

    APPLICATION_ACTIVITY = "110100", "Application activity"
    AUDIT_LOG_USED = "110101", "Audit log used"
    INSTANCES_ACCESSED = "110103", "DICOM instances accessed"
    INSTANCES_STORED = "110104", "DICOM instances transferred"
    STUDY_DELETED = "110105", "DICOM study deleted"
    EXPORT = "110106", "Export"
    IMPORT = "110107", "Import"
    PATIENT_RECORD = "110110", "Patient record"
    QUERY = "110112", "Query"
    SECURITY_ALERT = "110113", "Security alert"
    USER_AUTHENTICATION = "110114", "User authentication"


class Action(models.TextChoices):
    CREATE = "C", "Create"
    READ = "R", "Read"
    UPDATE = "U", "Update"
    DELETE = "D", "Delete"
    EXECUTE = "E", "Execute"


class Outcome(models.IntegerChoices):
    SUCCESS = 0, "Success"
    MINOR_FAILURE = 4, "Minor failure"
    SERIOUS_FAILURE = 8, "Serious failure"
    MAJOR_FAILURE = 12, "Major failure"


class AuditEvent(models.Model):
    """One append-only, hash-chained audit record. Rows are never updated or deleted.

    ``seq`` numbers the events 1, 2, 3, ... without gaps; ``hash`` is keyed (HMAC-SHA256 with
    MEDPORTAL_AUDIT_KEY) when ``keyed``, plain SHA-256 for rows from before the key existed.
    """

    seq = models.BigIntegerField(unique=True)
    keyed = models.BooleanField(default=False)
    occurred_at = models.DateTimeField(db_index=True)
    event_type = models.CharField(max_length=6, choices=EventType.choices)
    action = models.CharField(max_length=1, choices=Action.choices)
    outcome = models.PositiveSmallIntegerField(choices=Outcome.choices)
    description = models.CharField(max_length=200)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=100, blank=True)
    is_requestor = models.BooleanField(default=True)
    network_address = models.GenericIPAddressField(null=True, blank=True)
    patient_id = models.CharField(max_length=64, blank=True, db_index=True)
    study_uid = models.CharField(max_length=64, blank=True, db_index=True)
    accession_number = models.CharField(max_length=64, blank=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.get_event_type_display()} {self.username}"
