"""The report stream consumer over the real Redis channel layer."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from medportal.asgi import application
from medportal.audit.models import AuditEvent
from medportal.imaging.ingest import IncomingFile
from medportal.intake.receive import studies_receive
from medportal.reporting.services import drafts
from medportal.streaming.publish import report_group
from tests.conftest import dicom_bytes, token_header

pytestmark = pytest.mark.django_db(transaction=True)


def make_report(user):
    _, reports = studies_receive(
        files=[IncomingFile("CT_small.dcm", dicom_bytes("CT_small.dcm"))], uploader=user, auto_draft=False
    )
    return reports[0]


async def open_stream(report_id: int, user=None, origin: bytes | None = None) -> WebsocketCommunicator:
    headers = []
    if user is not None:
        header = await database_sync_to_async(token_header)(user)
        headers.append((b"authorization", header["HTTP_AUTHORIZATION"].encode()))
    if origin is not None:
        headers.append((b"origin", origin))
    return WebsocketCommunicator(application, f"/ws/reports/{report_id}/", headers=headers)


async def test_a_subscriber_gets_the_database_text_then_live_chunks(radiologist):
    report = await database_sync_to_async(make_report)(radiologist)
    await database_sync_to_async(drafts.draft_request)(report=report, user=radiologist)
    attempt = report.attempt + 1
    claim = await database_sync_to_async(drafts.draft_start)(report_id=report.pk, attempt=attempt)
    await database_sync_to_async(drafts.draft_progress)(claim=claim, text="The lungs")

    stream = await open_stream(report.pk, radiologist)
    connected, _ = await stream.connect()
    assert connected
    snapshot = await stream.receive_json_from(timeout=5)
    assert (snapshot["type"], snapshot["status"], snapshot["text"]) == ("snapshot", "drafting", "The lungs")

    await get_channel_layer().group_send(
        report_group(report.pk),
        {
            "type": "draft.chunk",
            "attempt": attempt,
            "stream": claim.stream,
            "seq": 3,
            "offset": 9,
            "text": " are clear.",
        },
    )
    chunk = await stream.receive_json_from(timeout=5)
    assert chunk == {
        "type": "chunk",
        "attempt": attempt,
        "stream": claim.stream,
        "seq": 3,
        "offset": 9,
        "text": " are clear.",
    }

    # A client that saw a gap asks again, and gets the database's text.
    await database_sync_to_async(drafts.draft_progress)(claim=claim, text="The lungs are clear.")
    await stream.send_json_to({"type": "resync"})
    again = await stream.receive_json_from(timeout=5)
    assert again["text"] == "The lungs are clear."
    await stream.disconnect()

    opened = await database_sync_to_async(
        AuditEvent.objects.filter(description="Report stream opened", object_id=str(report.pk)).count
    )()
    assert opened == 1


async def test_a_user_without_a_role_is_refused_and_audited(radiologist, outsider):
    report = await database_sync_to_async(make_report)(radiologist)
    stream = await open_stream(report.pk, outsider)
    connected, code = await stream.connect()
    assert not connected and code == 4403
    refused = await database_sync_to_async(
        AuditEvent.objects.filter(description="Report stream refused", outcome=4).count
    )()
    assert refused == 1


async def test_an_anonymous_client_is_refused(radiologist):
    report = await database_sync_to_async(make_report)(radiologist)
    stream = await open_stream(report.pk)
    connected, code = await stream.connect()
    assert not connected and code == 4403


async def test_an_unknown_report_is_not_found(radiologist):
    stream = await open_stream(999999, radiologist)
    connected, code = await stream.connect()
    assert not connected and code == 4404


async def test_a_browser_from_another_site_is_refused(radiologist):
    report = await database_sync_to_async(make_report)(radiologist)
    stream = await open_stream(report.pk, radiologist, origin=b"https://evil.example")
    connected, _ = await stream.connect()
    assert not connected
    ours = await open_stream(report.pk, radiologist, origin=b"http://127.0.0.1:8000")
    connected, _ = await ours.connect()
    assert connected
    await ours.disconnect()


async def test_an_idle_stream_stays_open(radiologist):
    """Nothing may be sent for a while (a worker loading the model): the socket must not drop."""
    report = await database_sync_to_async(make_report)(radiologist)
    stream = await open_stream(report.pk, radiologist)
    assert (await stream.connect())[0]
    await stream.receive_json_from(timeout=5)
    await asyncio.sleep(7)  # longer than the layer's 5 s blocking pop
    await get_channel_layer().group_send(
        report_group(report.pk),
        {"type": "draft.chunk", "attempt": 1, "stream": "1.1", "seq": 1, "offset": 0, "text": "Late."},
    )
    assert (await stream.receive_json_from(timeout=5))["text"] == "Late."
    await stream.disconnect()


@pytest.mark.parametrize("path", ["report", "worklist"])
async def test_a_browser_socket_closes_when_its_session_expires(radiologist, settings, path):
    from django.test import Client

    settings.SESSION_IDLE_SECONDS = 1
    settings.SESSION_WATCH_SECONDS = 0.3
    report = await database_sync_to_async(make_report)(radiologist)

    def login_cookie() -> bytes:
        browser = Client()
        browser.force_login(radiologist)
        session = browser.session
        from medportal.accounts.sessions import session_start

        session_start(session)
        session.save()
        return f"sessionid={browser.cookies['sessionid'].value}".encode()

    cookie = await database_sync_to_async(login_cookie)()
    url = f"/ws/reports/{report.pk}/" if path == "report" else "/ws/worklist/"
    stream = WebsocketCommunicator(application, url, headers=[(b"cookie", cookie)])
    assert (await stream.connect())[0]
    if path == "report":
        await stream.receive_json_from(timeout=5)
    await asyncio.sleep(1.5)  # idle past the timeout: the watcher closes the socket
    closed = await stream.receive_output(timeout=3)
    assert closed == {"type": "websocket.close", "code": 4401}
    # And a new socket on that session is refused.
    again = WebsocketCommunicator(application, url, headers=[(b"cookie", cookie)])
    connected, code = await again.connect()
    assert not connected and code == 4401
