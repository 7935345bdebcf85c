"""Forms of the report template pages (admins). Validation of a template itself is
``report_templates.library``'s, so that the pages and any other caller get the same messages."""

from __future__ import annotations

from django import forms

from medportal.reporting.drafting_scope import DRAFTED_MODALITIES
from medportal.reporting.models import ReportTemplate
from medportal.reporting.report_templates.mrrt import MAX_MRRT_BYTES

_MODALITY_HELP = "DICOM modality: CR, DX, CT or MR (what MedGemma drafts). Blank: any modality."
_BODY_PART_HELP = (
    "DICOM Body Part Examined: CHEST, HEAD, ABDOMEN, ... (THORAX is stored as CHEST). Blank: any."
)


def _text(label: str, rows: int, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=20000,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": rows}),
    )


class TemplateForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)
    modality = forms.CharField(label="Modality", max_length=16, required=False, help_text=_MODALITY_HELP)
    body_part = forms.CharField(label="Body part", max_length=64, required=False, help_text=_BODY_PART_HELP)
    has_technique = forms.BooleanField(label="The report has a Technique section", required=False)
    technique = _text("Normal technique", 2)
    has_comparison = forms.BooleanField(label="The report has a Comparison section", required=False)
    comparison = _text("Normal comparison", 2)
    findings = _text("Normal findings", 8)
    impression = _text("Normal impression", 3)
    prompt_instruction = _text(
        "Instruction for the AI draft",
        4,
        "Added to MedGemma's prompt for studies this template matches, e.g. “Comment on the "
        "heart size and the costophrenic angles.” The normal text is not sent to the model.",
    )

    @classmethod
    def for_template(cls, template: ReportTemplate, data=None) -> TemplateForm:
        return cls(data, initial={name: getattr(template, name) for name in cls.base_fields})


class TemplateImportForm(forms.Form):
    file = forms.FileField(
        label="IHE MRRT template (.html)",
        help_text=f"An HTML5 report template as RSNA's RadReport library publishes it; at most "
        f"{MAX_MRRT_BYTES // 1024} KB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".html,.htm,text/html"}),
    )
    modality = forms.ChoiceField(
        label="Modality",
        required=False,
        choices=[("", "From the template's codes"), *((m, m) for m in DRAFTED_MODALITIES)],
        help_text="Needed when the template does not code its modality, or codes projection radiography "
        "(CR or DX).",
    )
    body_part = forms.CharField(
        label="Body part",
        max_length=64,
        required=False,
        help_text="Blank: from the template's codes, else any body part.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_MRRT_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size / 1024 / 1024:.1f} MB; an MRRT template may be at most "
                f"{MAX_MRRT_BYTES // 1024} KB. Nothing was stored."
            )
        return upload


ANY_MODALITY = "any"


class TemplateFilterForm(forms.Form):
    modality = forms.ChoiceField(
        label="Modality",
        required=False,
        choices=[
            ("", "All"),
            *((m, m) for m in DRAFTED_MODALITIES),
            (ANY_MODALITY, "Any-modality templates"),
        ],
    )

    def templates(self):
        templates = ReportTemplate.objects.select_related("updated_by")
        modality = self.cleaned_data.get("modality", "") if self.is_valid() else ""
        if modality == ANY_MODALITY:
            return templates.filter(modality="")
        return templates.filter(modality=modality) if modality else templates.all()
