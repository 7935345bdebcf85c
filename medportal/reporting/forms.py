from django import forms
from django.contrib.auth import get_user_model

from medportal.access.roles import Role
from medportal.imaging.models import Priority
from medportal.reporting.models import ReportStatus
from medportal.reporting.selectors import OPEN, WORKLIST_DEFAULT_SORT, WORKLIST_SORTS, WorklistParams

PRIORITY_CHOICES = [(p.name.lower(), p.label) for p in Priority]


class BodyPartForm(forms.Form):
    body_part = forms.CharField(
        label="Body part",
        max_length=64,
        help_text="As DICOM's Body Part Examined says it: CHEST, ABDOMEN, HEAD, KNEE, TIBIA, HAND...",
    )

    def clean_body_part(self) -> str:
        value = " ".join(self.cleaned_data["body_part"].split()).upper()
        if not value.replace(" ", "").replace("_", "").isalnum():
            raise forms.ValidationError("A body part is letters and digits, e.g. CHEST or KNEE.")
        return value


class PriorChoiceForm(forms.Form):
    # "auto", "none" or the pk of one of the study's candidate priors.
    prior = forms.CharField(max_length=20)


class IndicationForm(forms.Form):
    indication = forms.CharField(
        label="Clinical indication / history",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ReportEditForm(forms.Form):
    # Technique and Comparison are shown where the report's template has them; a form without
    # them leaves them as they are (see views.report_save).
    technique = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    comparison = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    findings = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 12}))
    impression = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}))
    # Its own id: each save (autosave too) sends the new version number back to this input.
    version = forms.IntegerField(widget=forms.HiddenInput(attrs={"id": "edit-version"}))


class DraftRequestForm(forms.Form):
    instruction = forms.CharField(
        label="Extra instruction for the AI",
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "Optional, e.g. “be brief”, “describe the lung bases”"}),
        error_messages={"max_length": "The instruction is too long: at most %(limit_value)d characters."},
    )


class SignForm(forms.Form):
    password = forms.CharField(
        label="Your password (to confirm it is you)",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    otp_code = forms.CharField(
        label="Code from your authenticator app",
        required=False,
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    version = forms.IntegerField(widget=forms.HiddenInput(attrs={"id": "sign-version"}))


class AddendumForm(SignForm):
    text = forms.CharField(
        label="Addendum",
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": "Write the addendum's text."},
    )
    version = None


class CancelForm(forms.Form):
    reason = forms.CharField(
        label="Why is this report cancelled?",
        max_length=2000,
        error_messages={"required": "Say why the report is cancelled."},
    )


# The common DICOM modalities; a filter on any other is refused as an unknown choice.
WORKLIST_MODALITIES = ["CR", "DX", "CT", "MR", "US", "MG", "NM", "PT", "XA", "RF", "OT"]


class WorklistFilterForm(forms.Form):
    """The worklist's GET parameters. An invalid one is reported and left out; the rest apply."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, MRN or accession"}),
    )
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Any status"), (OPEN, "Open (not signed or cancelled)"), *ReportStatus.choices],
    )
    modality = forms.ChoiceField(
        label="Modality",
        required=False,
        choices=[("", "Any modality")] + [(m, m) for m in WORKLIST_MODALITIES],
    )
    priority = forms.ChoiceField(
        label="Priority", required=False, choices=[("", "Any priority"), *PRIORITY_CHOICES]
    )
    mine = forms.BooleanField(label="Mine", required=False)
    date_from = forms.DateField(
        label="Received from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(label="to", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(
        required=False,
        choices=[(key, key) for name in WORKLIST_SORTS for key in (name, f"-{name}")],
        widget=forms.HiddenInput,
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000, widget=forms.HiddenInput)

    def params(self) -> WorklistParams:
        self.is_valid()
        data = self.cleaned_data
        return WorklistParams(
            q=data.get("q") or "",
            status=data.get("status") or "",
            modality=data.get("modality") or "",
            priority=Priority.from_name(data.get("priority")),
            mine=bool(data.get("mine")),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            sort=data.get("sort") or WORKLIST_DEFAULT_SORT,
            page=data.get("page") or 1,
        )


def radiologists():
    return (
        get_user_model()
        .objects.filter(groups__name=Role.RADIOLOGIST.value, is_active=True)
        .order_by("username")
    )


class AssignForm(forms.Form):
    """An admin's choice of radiologist for a study; empty unassigns it."""

    assignee = forms.ModelChoiceField(queryset=radiologists(), required=False, empty_label="(nobody)")
    return_to = forms.CharField(required=False, max_length=2000)
