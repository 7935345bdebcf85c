from django import forms

from medportal.quality.selectors import QualityFilters, filter_choices


class QualityFilterForm(forms.Form):
    date_from = forms.DateField(
        required=False, label="Signed from", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(required=False, label="to", widget=forms.DateInput(attrs={"type": "date"}))
    model = forms.ChoiceField(required=False, label="Model version")
    modality = forms.ChoiceField(required=False, label="Modality")
    radiologist = forms.ChoiceField(required=False, label="Radiologist")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = filter_choices()
        self._models = {key: key.rsplit("@", 1) for key, _ in choices["model"]}
        self.fields["model"].choices = [("", "Any model version"), *choices["model"]]
        self.fields["modality"].choices = [("", "Any modality"), *choices["modality"]]
        self.fields["radiologist"].choices = [("", "Any radiologist"), *choices["radiologist"]]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The start date is after the end date.")
        return data

    def filters(self) -> QualityFilters:
        """The filters asked for; none when the form is not valid (the page says why)."""
        if not self.is_valid():
            return QualityFilters()
        data = self.cleaned_data
        model_id, model_revision = self._models.get(data["model"], (None, None))
        return QualityFilters(
            date_from=data["date_from"],
            date_to=data["date_to"],
            model_id=model_id,
            model_revision=model_revision,
            modality=data["modality"],
            radiologist_id=int(data["radiologist"]) if data["radiologist"] else None,
        )
