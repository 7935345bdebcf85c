from django import forms
from django.core.exceptions import ValidationError

from medportal.imaging.ingest import IMAGE_MODALITIES


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "widget",
            MultipleFileInput(
                attrs={
                    "multiple": True,
                    "accept": ".dcm,.png,.jpg,.jpeg,application/dicom,image/png,image/jpeg",
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
        help_text="DICOM files (.dcm), or a PNG/JPEG image.",
        error_messages={"required": "Choose at least one file to upload."},
        # Ingest refuses an empty file by name and keeps the others; the form must not refuse them all.
        allow_empty_file=True,
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


class IndicationForm(forms.Form):
    indication = forms.CharField(
        label="Clinical indication / history",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ReportEditForm(forms.Form):
    findings = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 12}))
    impression = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}))
    version = forms.IntegerField(widget=forms.HiddenInput)


class SignForm(forms.Form):
    password = forms.CharField(
        label="Your password (to confirm it is you)",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    version = forms.IntegerField(widget=forms.HiddenInput)
