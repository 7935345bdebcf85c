"""Login lockout, idle timeout and session lifetime."""

import time

import pytest
from django.urls import reverse

from medportal.accounts.sessions import BACKGROUND_HEADER, LAST_SEEN, LOGIN_AT
from medportal.audit.models import AuditEvent, EventType, Outcome
from tests.conftest import PASSWORD


def log_in(client, username="rita", password=PASSWORD, address="10.0.0.7"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_repeated_failures_lock_the_username_out_from_that_address(client, radiologist, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, password="wrong password")
    locked = log_in(client)  # even the right password is refused now
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    alerts = AuditEvent.objects.filter(event_type=EventType.SECURITY_ALERT)
    assert alerts.exists()  # one when the lock fell, one for each attempt refused by it
    alert = alerts.first()
    assert (alert.username, alert.outcome, alert.network_address) == (
        "rita",
        Outcome.SERIOUS_FAILURE,
        "10.0.0.7",
    )
    # Another address, or another user, is not locked.
    assert log_in(client, address="10.0.0.8").status_code == 302


@pytest.mark.django_db
def test_an_idle_session_ends_and_the_user_is_told_why(client, radiologist, settings):
    assert log_in(client).status_code == 302
    assert client.get(reverse("worklist")).status_code == 200
    session = client.session
    session[LAST_SEEN] = time.time() - settings.SESSION_IDLE_SECONDS - 1
    session.save()
    response = client.get(reverse("worklist"), follow=True)
    assert response.redirect_chain[0][0].startswith(reverse("login"))
    assert b"without activity" in response.content
    assert AuditEvent.objects.filter(description="Session expired (idle)", username="rita").exists()
    assert client.get(reverse("worklist")).status_code == 302  # logged out for good


@pytest.mark.django_db
def test_a_session_ends_after_its_lifetime_however_active(client, radiologist, settings):
    log_in(client)
    session = client.session
    session[LOGIN_AT] = time.time() - settings.SESSION_ABSOLUTE_SECONDS - 1
    session.save()
    response = client.get(reverse("worklist"), follow=True)
    assert b"at most 12 hours" in response.content
    assert AuditEvent.objects.filter(description="Session expired (lifetime)").exists()


@pytest.mark.django_db
def test_background_polling_does_not_keep_a_session_alive(client, radiologist):
    log_in(client)
    session = client.session
    session[LAST_SEEN] = seen = time.time() - 60
    session.save()
    client.get(reverse("worklist"), headers={BACKGROUND_HEADER: "1", "HX-Request": "true"})
    assert client.session[LAST_SEEN] == seen
    client.get(reverse("worklist"))
    assert client.session[LAST_SEEN] > seen


@pytest.mark.django_db
def test_an_htmx_request_on_an_expired_session_redirects_the_whole_page(client, radiologist, settings):
    log_in(client)
    session = client.session
    session[LAST_SEEN] = time.time() - settings.SESSION_IDLE_SECONDS - 1
    session.save()
    response = client.get(reverse("worklist"), headers={"HX-Request": "true"})
    assert response["HX-Redirect"].startswith(reverse("login"))
