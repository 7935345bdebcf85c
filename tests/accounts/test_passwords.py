"""Passwords: repetitive or sequential ones are refused with a message that says why; ordinary
passphrases and random passwords pass. Through Django's validators, as every password form uses."""

import pytest
from django.contrib.auth.password_validation import password_validators_help_texts, validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.conftest import PASSWORD


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaaaaaa",
        "abcdefghijkl",
        "123456789012",
        "qwertyuiop12",
        "zyxwvutsrqpo",
        "0987654321ab",
        "abcabcabcabc",
        "aaaabbbbcccc",
        "1234abcd5678",
        "ASDFGHJKL;12",
        "Xy7#Xy7#Xy7#Xy7#",
    ],
)
def test_repetitive_or_sequential_passwords_are_refused_with_the_reason(password):
    with pytest.raises(ValidationError) as refused:
        validate_password(password)
    assert any("mostly repeated or sequential characters" in m for m in refused.value.messages)


@pytest.mark.parametrize(
    "password",
    [PASSWORD, "purple monkey dishwasher", "k9#Tq2!mZp4w", "Summer at Lake Tahoe 1998", "ab12cd34ef56x"],
)
def test_other_passwords_pass(password):
    validate_password(password)


def test_the_rule_is_in_the_help_text_of_password_forms():
    assert any("repeated or sequential" in text for text in password_validators_help_texts())


@pytest.mark.django_db
def test_changing_a_password_in_the_admin_refuses_a_sequential_one(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password=PASSWORD)
    client.force_login(admin)
    url = reverse("admin:auth_user_password_change", args=[admin.pk])
    response = client.post(url, {"password1": "123456789012", "password2": "123456789012"})
    assert response.status_code == 200
    assert "mostly repeated or sequential characters" in response.content.decode()
    admin.refresh_from_db()
    assert admin.check_password(PASSWORD)
