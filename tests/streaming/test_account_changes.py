"""An open browser websocket closes when an admin deactivates its account or resets its
password, as the account's pages stop answering."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from medportal.access.roles import Role
from medportal.accounts.users import user_password_reset, user_set_active
from medportal.asgi import application
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("change", ["deactivate", "password"])
async def test_a_browser_socket_closes_when_an_admin_changes_its_account(radiologist, settings, change):
    settings.SESSION_WATCH_SECONDS = 0.3

    def login_cookie() -> bytes:
        browser = Client()
        browser.force_login(radiologist)
        return f"sessionid={browser.cookies['sessionid'].value}".encode()

    cookie = await database_sync_to_async(login_cookie)()
    socket = WebsocketCommunicator(application, "/ws/worklist/", headers=[(b"cookie", cookie)])
    assert (await socket.connect())[0]

    def admin_changes():
        admin = make_user("ada", Role.ADMIN)
        if change == "deactivate":
            user_set_active(user=radiologist, active=False, by=admin)
        else:
            user_password_reset(user=radiologist, password="violet lantern across the harbour", by=admin)

    await database_sync_to_async(admin_changes)()
    assert await socket.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
