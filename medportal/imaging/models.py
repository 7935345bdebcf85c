from __future__ import annotations

from django.conf import settings
from django.db import models


class Patient(models.Model):
    patient_id = models.CharField("MRN", max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    birth_date = models.CharField(max_length=8, blank=True)
    sex = models.CharField(max_length=16, blank=True)

    def __str__(self) -> str:
        return f"{self.name or 'Unnamed'} ({self.patient_id})"


class Priority(models.IntegerChoices):
    """Reading priority. Stored as a rank so that "STAT first" is a plain index order."""

    STAT = 1, "STAT"
    URGENT = 2, "Urgent"
    ROUTINE = 3, "Routine"

    @classmethod
    def from_name(cls, value: str | None) -> Priority | None:
        """``stat`` / ``urgent`` / ``routine`` (any case), as forms, URLs and the API spell them."""
        try:
            return cls[(value or "").strip().upper()]
        except KeyError:
            return None


class Study(models.Model):
    study_uid = models.CharField(max_length=64, unique=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    accession_number = models.CharField(max_length=64, blank=True, db_index=True)
    study_date = models.DateField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    body_part = models.CharField(max_length=64, blank=True)
    indication = models.TextField("clinical indication / history", blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.ROUTINE)

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-received_at"]
        indexes = [
            # The worklist's sorts and filters walk these in order and stop after one page.
            models.Index(fields=["priority", "received_at", "id"], name="study_priority_received"),
            models.Index(fields=["received_at", "id"], name="study_received_id"),
            models.Index(fields=["modality", "received_at"], name="study_modality_received"),
            models.Index(fields=["study_date"], name="study_date"),
        ]

    def __str__(self) -> str:
        return f"{self.modality} {self.description or self.study_uid}"

    def audit_identifiers(self) -> dict[str, str]:
        """The patient and study identifiers an audit event about this study carries."""
        return {
            "patient_id": self.patient.patient_id,
            "study_uid": self.study_uid,
            "accession_number": self.accession_number,
        }


class Series(models.Model):
    series_uid = models.CharField(max_length=64, unique=True)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    modality = models.CharField(max_length=16, blank=True)
    body_part = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=200, blank=True)
    series_number = models.IntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "series"
        ordering = ["series_number", "id"]

    def __str__(self) -> str:
        return f"{self.modality} series {self.series_number or self.series_uid}"


class Instance(models.Model):
    DICOM = "application/dicom"
    PNG = "image/png"
    JPEG = "image/jpeg"
    CONTENT_TYPES = [(DICOM, "DICOM"), (PNG, "PNG"), (JPEG, "JPEG")]

    sop_instance_uid = models.CharField(max_length=64, unique=True)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    # An image is shown in the viewer and drafted from; any other stored object (a structured
    # report, a presentation state, a PDF, an RT plan, a waveform) is listed on the study page.
    is_image = models.BooleanField(default=True)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    content_type = models.CharField(max_length=32, choices=CONTENT_TYPES)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField()
    instance_number = models.IntegerField(null=True, blank=True)
    rows = models.IntegerField(null=True, blank=True)
    columns = models.IntegerField(null=True, blank=True)
    number_of_frames = models.IntegerField(default=1)
    photometric_interpretation = models.CharField(max_length=32, blank=True)
    view_position = models.CharField(max_length=16, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instance_number", "id"]

    def __str__(self) -> str:
        return self.sop_instance_uid

    @property
    def sop_class_name(self) -> str:
        """The SOP class as people call it ("Comprehensive SR Storage"), else its UID."""
        from pydicom.uid import UID

        name = UID(self.sop_class_uid).name if self.sop_class_uid else ""
        if name and name != self.sop_class_uid:
            return name
        return self.sop_class_uid or self.get_content_type_display()

    @property
    def storage_name(self) -> str:
        return storage_name_for(self.sha256)


def storage_name_for(sha256: str) -> str:
    """Where a blob lives in the image store: derived from its hash only, never from its name."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


class InstanceMetadata(models.Model):
    """An instance's header as DICOM JSON (PS3.18 F.2), Pixel Data left out, made once from its
    stored file: a viewer asks for a series' metadata again and again, and reading hundreds of
    files for each answer is what made it slow (imaging.dicomweb_metadata)."""

    instance = models.OneToOneField(
        Instance, primary_key=True, on_delete=models.CASCADE, related_name="dicom_metadata"
    )
    sha256 = models.CharField(max_length=64)  # of the file it was made from
    version = models.PositiveSmallIntegerField()  # of the conversion; an older one is made again
    dicom_json = models.TextField()
    # Pixel Data's VR (OB or OW), for its BulkDataURI; blank when the instance has none.
    pixel_vr = models.CharField(max_length=2, blank=True)
    # Uncompressed little-endian pixels: where their value starts in the stored file and the bytes
    # of one frame, so that a frame is read by seeking to it (imaging.dicomweb_frames). Null otherwise.
    transfer_syntax = models.CharField(max_length=64, blank=True)
    pixel_offset = models.BigIntegerField(null=True, blank=True)
    frame_bytes = models.BigIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"metadata of instance {self.instance_id}"
