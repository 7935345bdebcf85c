import pytest
from django.urls import reverse

from medportal.audit.models import AuditEvent, EventType, Outcome
from tests.conftest import PASSWORD


@pytest.mark.django_db
def test_a_radiologist_logs_in_and_sees_the_worklist(client, radiologist):
    response = client.post(reverse("login"), {"username": "rita", "password": PASSWORD}, follow=True)
    assert response.status_code == 200
    assert b"Worklist" in response.content
    event = AuditEvent.objects.filter(event_type=EventType.USER_AUTHENTICATION).last()
    assert (event.username, event.description, event.outcome) == ("rita", "Login", Outcome.SUCCESS)
    assert event.role == "radiologist"
    assert event.network_address == "127.0.0.1"


@pytest.mark.django_db
def test_a_failed_login_is_refused_and_audited(client, radiologist):
    response = client.post(reverse("login"), {"username": "rita", "password": "wrong password"})
    assert response.status_code == 200
    assert b"did not match" in response.content
    event = AuditEvent.objects.filter(event_type=EventType.USER_AUTHENTICATION).last()
    assert (event.username, event.description, event.outcome) == (
        "rita",
        "Login failed",
        Outcome.MINOR_FAILURE,
    )
    assert event.user is None


@pytest.mark.django_db
def test_pages_need_a_login(client):
    response = client.get(reverse("worklist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_a_user_without_a_role_is_refused(client, outsider):
    client.force_login(outsider)
    assert client.get(reverse("worklist")).status_code == 403
    assert client.get(reverse("upload")).status_code == 403
