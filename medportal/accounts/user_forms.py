"""Forms of the Users page (admins). Passwords go through AUTH_PASSWORD_VALIDATORS, with the
account's own name and e-mail, as every password form does."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import password_validators_help_text_html, validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

from medportal.accounts.users import PEOPLE_ROLES

ROLE_CHOICES = [(role.value, role.value.capitalize()) for role in PEOPLE_ROLES]


def _roles_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label="Roles",
        choices=ROLE_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Technologist: uploads. Radiologist: drafts, edits, signs. Auditor: reads the audit trail. "
        "Admin: templates, workers, interfaces, AI quality, users.",
    )


class _PasswordPair(forms.Form):
    """Two password fields; the subclass's ``account()`` is the user the password is for."""

    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords differ.")
        elif first:
            try:
                validate_password(first, self.account())
            except ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class UserCreateForm(_PasswordPair):
    username = forms.CharField(label="User name", max_length=150, validators=[UnicodeUsernameValidator()])
    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    email = forms.EmailField(label="E-mail", required=False)
    roles = _roles_field()

    field_order = ["username", "first_name", "last_name", "email", "roles", "password1", "password2"]

    def account(self):
        data = self.cleaned_data
        return get_user_model()(
            username=data.get("username", ""),
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            email=data.get("email", ""),
        )


class UserEditForm(forms.Form):
    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    email = forms.EmailField(label="E-mail", required=False)
    roles = _roles_field()

    @classmethod
    def for_user(cls, user, data=None) -> UserEditForm:
        names = set(user.groups.values_list("name", flat=True))
        initial = {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "roles": [value for value, _ in ROLE_CHOICES if value in names],
        }
        return cls(data, initial=initial)


class PasswordResetForm(_PasswordPair):
    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def account(self):
        return self.user
