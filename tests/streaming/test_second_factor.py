"""Websockets ask for the same completed login as pages: after the password step of a user
enrolled in two-factor authentication, every websocket route refuses the session until the
code is given."""

from __future__ import annotations

import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from medportal.asgi import application
from medportal.audit.models import AuditEvent, Outcome
from medportal.imaging.ingest import IncomingFile
from medportal.intake.receive import studies_receive
from medportal.streaming.routing import websocket_urlpatterns
from tests.accounts.test_second_factor import current_code
from tests.conftest import PASSWORD, dicom_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def websocket_urls(report_id: int) -> list[str]:
    """Every websocket route: a new one is covered without editing this test."""
    return ["/" + str(p.pattern).replace("<int:report_id>", str(report_id)) for p in websocket_urlpatterns]


def password_step(username: str) -> tuple[Client, bytes]:
    """A real login through the login page: the password only."""
    browser = Client()
    response = browser.post(reverse("login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302
    assert browser.get(reverse("worklist"))["Location"].startswith(reverse("login-second-factor"))
    return browser, f"sessionid={browser.cookies['sessionid'].value}".encode()


async def connect(url: str, cookie: bytes) -> tuple[bool, int | None]:
    socket = WebsocketCommunicator(application, url, headers=[(b"cookie", cookie)])
    connected, code = await socket.connect()
    if connected:
        await socket.disconnect()
    return connected, code


async def test_every_websocket_refuses_a_session_that_owes_its_second_factor(radiologist):
    def setup():
        device = TOTPDevice.objects.create(user=radiologist, name="phone", confirmed=True)
        _, reports = studies_receive(
            files=[IncomingFile("CT.dcm", dicom_bytes("CT_small.dcm"))],
            uploader=radiologist,
            auto_draft=False,
        )
        return device, reports[0]

    device, report = await database_sync_to_async(setup)()
    browser, cookie = await database_sync_to_async(password_step)("rita")
    urls = websocket_urls(report.pk)
    assert len(urls) >= 2
    for url in urls:
        assert await connect(url, cookie) == (False, 4401), url

    refused = await database_sync_to_async(list)(
        AuditEvent.objects.filter(description="Websocket refused: second factor not given")
    )
    assert {(e.username, e.outcome, e.detail["path"]) for e in refused} == {
        ("rita", Outcome.MINOR_FAILURE, url) for url in urls
    }

    def code_step():
        time.sleep(1.1)  # django-otp refuses a code within a second of the enrolment's last use
        response = browser.post(reverse("login-second-factor"), {"code": current_code(device), "next": "/"})
        assert response.status_code == 302

    await database_sync_to_async(code_step)()
    for url in urls:
        assert (await connect(url, cookie))[0], url


async def test_a_user_without_a_second_factor_connects_after_the_password(radiologist):
    def setup():
        _, reports = studies_receive(
            files=[IncomingFile("CT.dcm", dicom_bytes("CT_small.dcm"))],
            uploader=radiologist,
            auto_draft=False,
        )
        return reports[0]

    report = await database_sync_to_async(setup)()
    browser = Client()

    def login() -> bytes:
        assert browser.post(reverse("login"), {"username": "rita", "password": PASSWORD}).status_code == 302
        return f"sessionid={browser.cookies['sessionid'].value}".encode()

    cookie = await database_sync_to_async(login)()
    for url in websocket_urls(report.pk):
        assert (await connect(url, cookie))[0], url
