"""The upload form: DICOM files, zips, a folder, or a PNG/JPEG with what the header would say."""

from django import forms
from django.core.exceptions import ValidationError

from medportal.imaging.ingest import IMAGE_MODALITIES
from medportal.imaging.models import Priority
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
    image_modality = forms.ChoiceField(
        label="Modality of a PNG/JPEG",
        choices=list(IMAGE_MODALITIES.items()),
        initial="DX",
        required=False,
    )

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("files") and not cleaned.get("folder") and "files" not in self.errors:
            self.add_error("files", "Choose at least one file to upload.")
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
