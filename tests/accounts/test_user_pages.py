"""The Users page: an admin (not a superuser) manages people's accounts in MedPortal's own
pages; every change is audited; other roles are refused."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from medportal.access.roles import Role, roles_of
from medportal.audit.models import AuditEvent, EventType
from tests.conftest import PASSWORD, make_user, token_header

NEW_PASSWORD = "violet lantern across the harbour"


@pytest.fixture
def admin(db) -> User:
    return make_user("ada", Role.ADMIN)  # an admin by role, not a superuser


@pytest.fixture
def ada(client, admin) -> Client:
    client.force_login(admin)
    return client


def logs_in(username: str, password: str) -> bool:
    response = Client().post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302 and response["Location"] == reverse("worklist")


def events(description: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(description=description, event_type=EventType.SECURITY_ALERT))


def test_the_list_shows_each_user_with_roles_and_state_and_the_top_bar_links_it(ada, radiologist, auditor):
    auditor.is_active = False
    auditor.save()
    html = ada.get(reverse("user-list")).content.decode()
    assert 'id="nav-users"' in html
    rita = html.split(f'id="user-{radiologist.pk}"')[1].split("</tr>")[0]
    assert "radiologist" in rita and "Active" in rita
    audrey = html.split(f'id="user-{auditor.pk}"')[1].split("</tr>")[0]
    assert "auditor" in audrey and "Deactivated" in audrey


def test_an_admin_creates_a_user_who_logs_in_with_the_roles_given(ada, admin):
    response = ada.post(
        reverse("user-new"),
        {
            "username": "nina",
            "first_name": "Nina",
            "last_name": "Okafor",
            "roles": ["radiologist", "auditor"],
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("user-list")
    nina = User.objects.get(username="nina")
    assert roles_of(nina) == {Role.RADIOLOGIST, Role.AUDITOR}
    assert not nina.is_staff and not nina.is_superuser
    assert logs_in("nina", NEW_PASSWORD)
    (created,) = events("User created")
    assert (created.username, created.object_id) == ("ada", str(nina.pk))
    assert created.detail["account"] == "nina" and created.detail["roles"] == ["auditor", "radiologist"]
    assert created.detail["event_type_code"] == "110136"
    assert NEW_PASSWORD not in str(created.detail)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("123456789012", "mostly repeated or sequential characters"),
        ("qwertyuiop12", "mostly repeated or sequential characters"),
        ("short pw", "too short"),
        ("password1234", "too common"),
        ("nina.okafor.x", "too similar to the"),
    ],
)
def test_an_initial_password_must_pass_the_validators(ada, password, message):
    response = ada.post(
        reverse("user-new"),
        {"username": "nina.okafor", "roles": ["technologist"], "password1": password, "password2": password},
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not User.objects.filter(username="nina.okafor").exists()
    assert not events("User created")


def test_a_taken_user_name_or_differing_passwords_are_refused(ada, radiologist):
    taken = ada.post(
        reverse("user-new"), {"username": "RITA", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert (
        taken.status_code == 400 and "A user named &#x27;RITA&#x27; already exists." in taken.content.decode()
    )
    differ = ada.post(
        reverse("user-new"), {"username": "nina", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "!"}
    )
    assert differ.status_code == 400 and "The two passwords differ." in differ.content.decode()
    assert User.objects.count() == 2


def test_an_admin_changes_roles_and_the_change_is_audited(ada, radiologist):
    response = ada.post(
        reverse("user-edit", args=[radiologist.pk]),
        {"first_name": "Rita", "last_name": "Levi", "email": "rita@hospital.example", "roles": ["auditor"]},
    )
    assert response.status_code == 302
    radiologist.refresh_from_db()
    assert roles_of(User.objects.get(pk=radiologist.pk)) == {Role.AUDITOR}
    assert radiologist.get_full_name() == "Rita Levi"
    (roles,) = events("User roles changed")
    assert roles.detail["before"] == ["radiologist"] and roles.detail["after"] == ["auditor"]
    (details,) = events("User details changed")
    assert details.detail["changed"] == ["email", "first_name", "last_name"]


def test_deactivating_ends_logins_and_tokens_and_reactivating_restores_them(ada, radiologist, client):
    header = token_header(radiologist)
    assert ada.post(reverse("user-active", args=[radiologist.pk]), {"active": "false"}).status_code == 302
    assert not logs_in("rita", PASSWORD)
    assert Client().get(reverse("api-report", args=[1]), **header).status_code == 401
    assert [e.detail["active"] for e in events("User deactivated")] == [False]
    assert ada.post(reverse("user-active", args=[radiologist.pk]), {"active": "true"}).status_code == 302
    assert logs_in("rita", PASSWORD)
    assert [e.detail["account"] for e in events("User reactivated")] == ["rita"]


def test_an_open_session_ends_when_its_user_is_deactivated(ada, radiologist):
    rita = Client()
    rita.force_login(radiologist)
    assert rita.get(reverse("worklist")).status_code == 200
    ada.post(reverse("user-active", args=[radiologist.pk]), {"active": "false"})
    assert rita.get(reverse("worklist"))["Location"].startswith(reverse("login"))


def test_a_password_reset_replaces_the_password_and_ends_open_sessions(ada, radiologist):
    rita = Client()
    rita.force_login(radiologist)
    weak = ada.post(
        reverse("user-password", args=[radiologist.pk]),
        {"password1": "abcdefghijkl", "password2": "abcdefghijkl"},
    )
    assert weak.status_code == 400 and "mostly repeated or sequential characters" in weak.content.decode()
    response = ada.post(
        reverse("user-password", args=[radiologist.pk]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert not logs_in("rita", PASSWORD) and logs_in("rita", NEW_PASSWORD)
    assert rita.get(reverse("worklist"))["Location"].startswith(reverse("login"))
    (reset,) = events("User password reset")
    assert reset.detail["account"] == "rita" and NEW_PASSWORD not in str(reset.detail)


def test_an_admin_resetting_their_own_password_stays_logged_in(ada, admin):
    response = ada.post(
        reverse("user-password", args=[admin.pk]), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 302
    assert ada.get(reverse("user-list")).status_code == 200


def test_an_admin_cannot_lock_themselves_out(ada, admin):
    refused = ada.post(reverse("user-active", args=[admin.pk]), {"active": "false"})
    assert refused.status_code == 409 and "You cannot deactivate your own account" in refused.content.decode()
    demoted = ada.post(reverse("user-edit", args=[admin.pk]), {"roles": ["radiologist"]})
    assert demoted.status_code == 409 and "You cannot remove your own admin role" in demoted.content.decode()
    admin.refresh_from_db()
    assert admin.is_active and roles_of(User.objects.get(pk=admin.pk)) == {Role.ADMIN}
    assert not events("User deactivated") and not events("User roles changed")


def test_only_a_superuser_changes_a_superuser(ada, db):
    root = make_user("root", Role.ADMIN, superuser=True)
    for url, data in [
        (reverse("user-active", args=[root.pk]), {"active": "false"}),
        (reverse("user-password", args=[root.pk]), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}),
        (reverse("user-edit", args=[root.pk]), {"roles": []}),
    ]:
        response = ada.post(url, data)
        assert response.status_code == 409
        assert "root is a superuser: only a superuser may change that account" in response.content.decode()
    root.refresh_from_db()
    assert root.is_active and root.check_password(PASSWORD)
    superuser = Client()
    superuser.force_login(root)
    assert superuser.post(reverse("user-active", args=[root.pk]), {"active": "false"}).status_code == 409


def test_a_service_account_can_be_deactivated_but_gets_no_password(ada, db):
    from medportal.accounts.services import service_token_issue

    token, _ = service_token_issue(name="worker-gpu1")
    account = token.user
    page = ada.get(reverse("user-edit", args=[account.pk])).content.decode()
    assert "A service account" in page and 'id="user-password-form"' not in page
    response = ada.post(
        reverse("user-password", args=[account.pk]), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 409 and "it uses tokens, never a password" in response.content.decode()
    assert ada.post(reverse("user-active", args=[account.pk]), {"active": "false"}).status_code == 302
    account.refresh_from_db()
    assert not account.is_active and not account.has_usable_password()


@pytest.mark.parametrize("role", [Role.RADIOLOGIST, Role.TECHNOLOGIST, Role.AUDITOR])
def test_other_roles_are_refused_and_change_nothing(client, db, role):
    target = make_user("victim", Role.TECHNOLOGIST)
    client.force_login(make_user(f"someone-{role.value}", role))
    home = client.get(reverse("worklist") if role != Role.AUDITOR else reverse("audit-list")).content.decode()
    assert 'id="nav-users"' not in home
    assert client.get(reverse("user-list")).status_code == 403
    assert client.get(reverse("user-edit", args=[target.pk])).status_code == 403
    data = {"username": "mallory", "roles": ["admin"], "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    assert client.post(reverse("user-new"), data).status_code == 403
    assert client.post(reverse("user-edit", args=[target.pk]), {"roles": ["admin"]}).status_code == 403
    assert client.post(reverse("user-active", args=[target.pk]), {"active": "false"}).status_code == 403
    assert client.post(reverse("user-password", args=[target.pk]), data).status_code == 403
    target.refresh_from_db()
    assert target.is_active and target.check_password(PASSWORD)
    assert roles_of(User.objects.get(pk=target.pk)) == {Role.TECHNOLOGIST}
    assert not User.objects.filter(username="mallory").exists()


def test_the_forms_offer_the_roles_and_say_the_password_rules(ada, radiologist):
    new = ada.get(reverse("user-new")).content.decode()
    assert all(f'value="{role}"' in new for role in ("technologist", "radiologist", "auditor", "admin"))
    assert 'value="service"' not in new
    assert "repeated or sequential characters" in new and "at least 12 characters" in new
    edit = ada.get(reverse("user-edit", args=[radiologist.pk])).content.decode()
    checked = re.findall(r'<input type="checkbox" name="roles" value="(\w+)"[^>]*\bchecked\b', edit)
    assert checked == ["radiologist"]
    assert 'id="user-password-form"' in edit and 'id="user-toggle"' in edit
