"""The websockets: a study page (or a script) watches a report's draft; the worklist page
hears when its list changed."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from medportal.access.roles import CAN_VIEW_STUDIES, has_role
from medportal.audit.models import Action, EventType, Outcome
from medportal.audit.services import audit_record
from medportal.reporting.models import Report
from medportal.reporting.selectors import report_snapshot
from medportal.streaming.publish import WORKLIST_GROUP, report_group
from medportal.streaming.session_watch import CLOSE_SESSION_EXPIRED, SessionWatchMixin

CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


def _client_address(scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


@database_sync_to_async
def _authorise(scope, report_id: int) -> tuple[Report | None, int | None]:
    user = scope.get("user")
    report = Report.objects.select_related("study__patient").filter(pk=report_id).first()
    allowed = user is not None and user.is_authenticated and has_role(user, *CAN_VIEW_STUDIES)
    study = report.study if report else None
    audit_record(
        event_type=EventType.PATIENT_RECORD,
        action=Action.READ,
        description="Report stream opened" if allowed and report else "Report stream refused",
        outcome=Outcome.SUCCESS if allowed and report else Outcome.MINOR_FAILURE,
        user=user,
        network_address=_client_address(scope),
        patient_id=study.patient.patient_id if study else "",
        study_uid=study.study_uid if study else "",
        accession_number=study.accession_number if study else "",
        object_type="report",
        object_id=report_id,
    )
    if not allowed:
        return None, CLOSE_FORBIDDEN
    if report is None:
        return None, CLOSE_NOT_FOUND
    return report, None


class ReportStreamConsumer(SessionWatchMixin, AsyncJsonWebsocketConsumer):
    """Joins ``report-<id>``, sends the text so far from the database, then relays chunks."""

    async def connect(self) -> None:
        self.report_id = int(self.scope["url_route"]["kwargs"]["report_id"])
        if not await self.session_is_valid():
            await self.close(code=CLOSE_SESSION_EXPIRED)
            return
        report, close_code = await _authorise(self.scope, self.report_id)
        if report is None:
            await self.close(code=close_code)
            return
        # Join before reading the snapshot, so no chunk falls between the two.
        await self.channel_layer.group_add(report_group(self.report_id), self.channel_name)
        await self.accept()
        self.watch_session()
        await self._send_snapshot()

    async def disconnect(self, code: int) -> None:
        self.stop_watching_session()
        await self.channel_layer.group_discard(report_group(self.report_id), self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        if content.get("type") == "resync":
            await self._send_snapshot()

    async def _send_snapshot(self) -> None:
        snapshot = await database_sync_to_async(report_snapshot)(report_id=self.report_id)
        await self.send_json({"type": "snapshot", **snapshot})

    async def draft_chunk(self, event: dict) -> None:
        await self.send_json(
            {
                "type": "chunk",
                "attempt": event["attempt"],
                "stream": event["stream"],
                "seq": event["seq"],
                "offset": event["offset"],
                "text": event["text"],
            }
        )

    async def draft_state(self, event: dict) -> None:
        await self._send_snapshot()


@database_sync_to_async
def _authorise_worklist(scope) -> bool:
    user = scope.get("user")
    allowed = user is not None and user.is_authenticated and has_role(user, *CAN_VIEW_STUDIES)
    audit_record(
        event_type=EventType.QUERY,
        action=Action.READ,
        description="Worklist subscribed" if allowed else "Worklist subscription refused",
        outcome=Outcome.SUCCESS if allowed else Outcome.MINOR_FAILURE,
        user=user,
        network_address=_client_address(scope),
        object_type="worklist",
    )
    return allowed


class WorklistConsumer(SessionWatchMixin, AsyncJsonWebsocketConsumer):
    """Joins ``worklist`` and says ``{"type": "changed"}`` when a study arrives or a report changes.

    One group for every page is deliberate: the message carries no data and nothing is
    filtered per socket; each page re-fetches its own list, with its own filters and
    permissions, over HTTP.
    """

    async def connect(self) -> None:
        if not await self.session_is_valid():
            await self.close(code=CLOSE_SESSION_EXPIRED)
            return
        if not await _authorise_worklist(self.scope):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.channel_layer.group_add(WORKLIST_GROUP, self.channel_name)
        await self.accept()
        self.watch_session()

    async def disconnect(self, code: int) -> None:
        self.stop_watching_session()
        await self.channel_layer.group_discard(WORKLIST_GROUP, self.channel_name)

    async def worklist_changed(self, event: dict) -> None:
        await self.send_json({"type": "changed"})
