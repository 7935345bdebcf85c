from django import forms

from medportal.audit.models import EventType, Outcome
from medportal.audit.selectors import AuditFilters


class AuditFilterForm(forms.Form):
    username = forms.CharField(required=False, label="User")
    patient_id = forms.CharField(required=False, label="Patient ID (MRN)")
    study_uid = forms.CharField(required=False, label="Study UID")
    event_type = forms.ChoiceField(
        required=False, label="Event", choices=[("", "Any event"), *EventType.choices]
    )
    outcome = forms.TypedChoiceField(
        required=False,
        label="Outcome",
        coerce=int,
        empty_value=None,
        choices=[("", "Any outcome"), *Outcome.choices],
    )
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def filters(self) -> AuditFilters:
        if not self.is_valid():
            return AuditFilters()
        data = self.cleaned_data
        return AuditFilters(**{k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()})
