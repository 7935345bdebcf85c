"""``/ws/dictation/<report id>/``: the editor's dictation and Impression-from-Findings socket.

The browser sends each utterance (cut at a pause) as one binary message of 16 kHz mono 16-bit
PCM; each is stored (audited), transcribed on the ASR queue, and the text and commands come back
to this socket only (the worker answers its channel), numbered in the order they were spoken.
``{"type": "impression", "findings": "..."}`` asks the drafting model for the Impression; its
text streams back here and is saved only when the radiologist saves it.
"""

from __future__ import annotations

from celery import current_app
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from medportal.access.roles import CAN_EDIT_REPORTS, has_role
from medportal.audit.models import Action, Outcome
from medportal.celery import IMPRESSION_TASK, TRANSCRIBE_TASK, draft_queue
from medportal.dictation.audio import AudioRefused, audio_receive
from medportal.reporting.auditing import report_audit
from medportal.reporting.models import Report
from medportal.streaming.consumers import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND
from medportal.streaming.session_watch import CLOSE_SESSION_EXPIRED, SessionWatchMixin

MAX_FINDINGS_CHARS = 20_000


@database_sync_to_async
def _authorise(scope, report_id: int) -> tuple[Report | None, int | None]:
    user = scope.get("user")
    report = Report.objects.select_related("study__patient").filter(pk=report_id).first()
    if report is None:
        return None, CLOSE_NOT_FOUND
    allowed = user is not None and user.is_authenticated and has_role(user, *CAN_EDIT_REPORTS)
    report_audit(
        report,
        "Dictation opened" if allowed else "Dictation refused",
        action=Action.READ,
        user=user if user is not None and user.is_authenticated else None,
        outcome=Outcome.SUCCESS if allowed else Outcome.MINOR_FAILURE,
    )
    return (report, None) if allowed else (None, CLOSE_FORBIDDEN)


def _editable(report: Report) -> bool:
    report.refresh_from_db(fields=["status"])
    return report.is_editable


class DictationConsumer(SessionWatchMixin, AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.report_id = int(self.scope["url_route"]["kwargs"]["report_id"])
        self.seq = 0
        if not await self.session_is_valid():
            await self.close(code=CLOSE_SESSION_EXPIRED)
            return
        self.report, close_code = await _authorise(self.scope, self.report_id)
        if self.report is None:
            await self.close(code=close_code)
            return
        await self.accept()
        self.watch_session()

    async def disconnect(self, code: int) -> None:
        self.stop_watching_session()

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if bytes_data is not None:
            await self._audio(bytes_data)
        else:
            await super().receive(text_data=text_data, **kwargs)

    async def _refuse(self, message: str, **extra) -> None:
        await self.send_json({"type": "error", "message": message, **extra})

    async def _audio(self, data: bytes) -> None:
        self.seq += 1
        if not await database_sync_to_async(_editable)(self.report):
            await self._refuse("This report can no longer be edited; nothing was dictated.", seq=self.seq)
            return
        user = self.scope["user"]
        try:
            name = await database_sync_to_async(audio_receive)(
                report=self.report, user=user, data=data, seq=self.seq
            )
        except AudioRefused as exc:
            await self._refuse(str(exc), seq=self.seq)
            return
        current_app.send_task(
            TRANSCRIBE_TASK,
            args=[self.report_id, user.pk, name, self.seq, self.channel_name],
            queue=settings.MEDPORTAL_ASR_QUEUE,
        )
        await self.send_json({"type": "received", "seq": self.seq})

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict) or content.get("type") != "impression":
            await self._refuse("Unknown message.")
            return
        findings = content.get("findings")
        if not isinstance(findings, str) or not findings.strip():
            await self._refuse(
                "Write the Findings first: the Impression is written from them.", about="impression"
            )
            return
        if len(findings) > MAX_FINDINGS_CHARS:
            await self._refuse(
                f"The Findings are longer than {MAX_FINDINGS_CHARS:,} characters.", about="impression"
            )
            return
        user = self.scope["user"]
        await database_sync_to_async(report_audit)(
            self.report, "Impression from findings requested", action=Action.READ, user=user,
            detail={"findings_characters": len(findings)},
        )  # fmt: skip
        current_app.send_task(
            IMPRESSION_TASK, args=[self.report_id, user.pk, findings, self.channel_name], queue=draft_queue()
        )
        await self.send_json({"type": "impression.started"})

    # Answers from the workers, to this socket's channel.
    async def dictation_transcript(self, event: dict) -> None:
        await self.send_json({**event, "type": "transcript"})

    async def dictation_failed(self, event: dict) -> None:
        await self.send_json({**event, "type": "error"})

    async def impression_chunk(self, event: dict) -> None:
        await self.send_json({"type": "impression.chunk", "text": event["text"]})

    async def impression_end(self, event: dict) -> None:
        await self.send_json({"type": "impression.end", "text": event["text"]})

    async def impression_failed(self, event: dict) -> None:
        await self.send_json({"type": "error", "about": "impression", "message": event["message"]})
