from django import forms

from medportal.communication.critical import critical_categories, email_configured
from medportal.communication.followups import MODALITIES
from medportal.communication.models import Method


class CriticalMarkForm(forms.Form):
    category = forms.ChoiceField(label="Category")
    finding = forms.CharField(
        label="Critical finding",
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "e.g. tension pneumothorax"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [(c, c) for c in critical_categories()]


class CriticalNotifyForm(forms.Form):
    recipient = forms.CharField(label="Whom", max_length=200)
    method = forms.ChoiceField(label="How")
    email = forms.EmailField(label="E-mail (for MedPortal's link)", required=False)
    read_back = forms.BooleanField(label="They read it back to me", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        methods = [(m.value, m.label) for m in Method if m != Method.EMAIL_LINK or email_configured()]
        self.fields["method"].choices = methods


class ReadBackForm(forms.Form):
    name = forms.CharField(label="Read back by", max_length=200, required=False)


class AcknowledgeForm(forms.Form):
    name = forms.CharField(label="Your name", max_length=200)


class FollowUpForm(forms.Form):
    text = forms.CharField(label="Recommendation", max_length=500)
    modality = forms.ChoiceField(
        label="Closed by a study of",
        required=False,
        choices=[("", "any modality")] + [(m, m) for m in MODALITIES],
    )
    due_date = forms.DateField(label="Due", widget=forms.DateInput(attrs={"type": "date"}))
