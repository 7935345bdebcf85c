"""The worklist websocket over the real Redis channel layer: it says "changed" when a study
arrives or a report changes, after the change is committed."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction

from medportal.asgi import application
from medportal.audit.models import AuditEvent, EventType, Outcome
from medportal.imaging.ingest import IncomingFile
from medportal.intake.receive import studies_receive
from medportal.reporting.services import claims, drafts
from tests.conftest import dicom_bytes, token_header

pytestmark = pytest.mark.django_db(transaction=True)


def receive_study(user):
    _, reports = studies_receive(
        files=[IncomingFile("CT_small.dcm", dicom_bytes("CT_small.dcm"))], uploader=user, auto_draft=False
    )
    return reports[0]


async def open_worklist(user=None) -> WebsocketCommunicator:
    headers = []
    if user is not None:
        header = await database_sync_to_async(token_header)(user)
        headers.append((b"authorization", header["HTTP_AUTHORIZATION"].encode()))
    return WebsocketCommunicator(application, "/ws/worklist/", headers=headers)


async def drain(socket: WebsocketCommunicator) -> int:
    """Read every message already sent (a change may send a few); how many there were."""
    count = 0
    while not await socket.receive_nothing(timeout=0.3):
        assert await socket.receive_json_from() == {"type": "changed"}
        count += 1
    return count


async def test_a_new_study_tells_open_worklists_to_refresh(radiologist, technologist):
    socket = await open_worklist(radiologist)
    connected, _ = await socket.connect()
    assert connected
    assert await socket.receive_nothing(timeout=0.3)

    await database_sync_to_async(receive_study)(technologist)

    assert await socket.receive_json_from(timeout=5) == {"type": "changed"}
    await drain(socket)
    await socket.disconnect()


async def test_report_changes_tell_open_worklists_to_refresh(radiologist, technologist):
    report = await database_sync_to_async(receive_study)(technologist)
    socket = await open_worklist(radiologist)
    connected, _ = await socket.connect()
    assert connected

    await database_sync_to_async(drafts.draft_request)(report=report, user=technologist)
    assert await socket.receive_json_from(timeout=5) == {"type": "changed"}
    await drain(socket)

    await database_sync_to_async(claims.report_claim)(report=report, user=radiologist)
    assert await socket.receive_json_from(timeout=5) == {"type": "changed"}
    await drain(socket)

    await database_sync_to_async(claims.report_release)(report=report, user=radiologist)
    assert await socket.receive_json_from(timeout=5) == {"type": "changed"}
    await socket.disconnect()


async def test_nothing_is_announced_before_the_change_commits(radiologist, technologist):
    report = await database_sync_to_async(receive_study)(technologist)
    socket = await open_worklist(radiologist)
    assert (await socket.connect())[0]

    def claim_in_a_transaction() -> bool:
        with transaction.atomic():
            claims.report_claim(report=report, user=radiologist)
            # Still inside the transaction: nobody may have been told yet.
            silent = asyncio.run_coroutine_threadsafe(socket.receive_nothing(timeout=0.5), loop).result()
        return silent

    loop = asyncio.get_running_loop()
    assert await database_sync_to_async(claim_in_a_transaction)()
    assert await socket.receive_json_from(timeout=5) == {"type": "changed"}
    await socket.disconnect()


async def test_a_user_without_a_role_is_refused_and_audited(outsider):
    socket = await open_worklist(outsider)
    connected, code = await socket.connect()
    assert not connected and code == 4403
    read = database_sync_to_async(AuditEvent.objects.get)
    refused = await read(description="Worklist subscription refused")
    assert (refused.username, refused.outcome) == ("olga", Outcome.MINOR_FAILURE)


async def test_an_anonymous_client_is_refused():
    socket = await open_worklist()
    connected, code = await socket.connect()
    assert not connected and code == 4403


# Last: a refused test that ends at once can leave a closing database session behind
# as pytest drops the test database (a warning, not a failure).
async def test_subscribing_is_audited(radiologist):
    socket = await open_worklist(radiologist)
    assert (await socket.connect())[0]
    await socket.disconnect()
    event = await database_sync_to_async(AuditEvent.objects.get)(description="Worklist subscribed")
    assert (event.event_type, event.username, event.outcome) == (EventType.QUERY, "rita", Outcome.SUCCESS)
    assert event.object_type == "worklist"
