"""The upload form: DICOM files, zips, a folder, or a PNG/JPEG with what the header would say."""

from django import forms
from django.core.exceptions import ValidationError

from medportal.imaging.ingest import IMAGE_MODALITIES
from medportal.imaging.models import Priority
from medportal.intake.pictures import (
    BODY_PARTS,
    PictureDetailsError,
    PictureFields,
    has_picture,
    picture_details,
)
from medportal.reporting.forms import PRIORITY_CHOICES


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "widget",
            MultipleFileInput(
                attrs={
                    "multiple": True,
                    "accept": ".dcm,.zip,.png,.jpg,.jpeg,"
                    "application/dicom,application/zip,image/png,image/jpeg",
                }
            ),
        )
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            if not data and self.required:  # the widget gives [] when no file was sent
                raise ValidationError(self.error_messages["required"], code="required")
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class UploadForm(forms.Form):
    files = MultipleFileField(
        label="Images",
        help_text="DICOM files (.dcm), zip files of them, or a PNG/JPEG image.",
        # Either this or a folder: clean() asks for one of them.
        required=False,
        # Ingest refuses an empty file by name and keeps the others; the form must not refuse them all.
        allow_empty_file=True,
    )
    folder = MultipleFileField(
        label="Or a whole folder",
        required=False,
        allow_empty_file=True,
        # Browsers let the user pick a folder (every file in it and below) with this attribute.
        widget=MultipleFileInput(attrs={"multiple": True, "webkitdirectory": True, "directory": True}),
    )
    indication = forms.CharField(
        label="Clinical indication / history",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional. Left empty, the indication in the DICOM header is used where present.",
        max_length=4000,
    )
    # A PNG or JPEG has no header: these say what it would (required for a picture; see pictures.py).
    image_modality = forms.ChoiceField(
        label="Modality of a PNG/JPEG",
        choices=[("", "Choose…"), *IMAGE_MODALITIES.items()],
        required=False,
    )
    body_part = forms.CharField(
        label="Body part of a PNG/JPEG",
        max_length=64,
        required=False,
        widget=forms.TextInput(attrs={"list": "body-parts", "autocomplete": "off"}),
        help_text="Pick one or type another (e.g. LEFT KNEE).",
    )
    patient_name = forms.CharField(label="Patient's name (PNG/JPEG)", max_length=200, required=False)
    patient_id = forms.CharField(
        label="MRN (PNG/JPEG)",
        max_length=64,
        required=False,
        help_text="Left blank, MedPortal makes one up, marked NOMRN-.",
    )
    accession_number = forms.CharField(label="Accession number (PNG/JPEG)", max_length=64, required=False)

    body_parts = BODY_PARTS

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("files") and not cleaned.get("folder") and "files" not in self.errors:
            self.add_error("files", "Choose at least one file to upload.")
        cleaned["picture"] = None
        uploaded = [*(cleaned.get("files") or []), *(cleaned.get("folder") or [])]
        if has_picture([(f.name, _head(f)) for f in uploaded]):
            try:
                cleaned["picture"] = picture_details(
                    PictureFields(
                        modality=cleaned.get("image_modality") or "",
                        body_part=cleaned.get("body_part") or "",
                        patient_name=cleaned.get("patient_name") or "",
                        patient_id=cleaned.get("patient_id") or "",
                        accession_number=cleaned.get("accession_number") or "",
                    )
                )
            except PictureDetailsError as exc:
                for field, message in exc.errors.items():
                    self.add_error("image_modality" if field == "modality" else field, message)
        return cleaned

    def uploaded_files(self) -> list:
        """The files chosen one by one and those of the chosen folder."""
        return [*self.cleaned_data["files"], *self.cleaned_data["folder"]]

    priority = forms.ChoiceField(
        label="Priority",
        choices=[("", "From the DICOM header (else routine)"), *PRIORITY_CHOICES],
        required=False,
    )

    def clean_priority(self) -> Priority | None:
        return Priority.from_name(self.cleaned_data["priority"])


def _head(uploaded) -> bytes:
    """An uploaded file's first bytes (enough to tell a picture from DICOM), leaving it unread."""
    uploaded.seek(0)
    head = uploaded.read(8)
    uploaded.seek(0)
    return head
