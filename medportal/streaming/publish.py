"""Publishing a report's draft to its group from outside a consumer (the worker).

Messages are at-most-once: every chunk carries its stream (attempt and claim:
the text starts again when either changes), sequence number and character
offset, so that a client can spot a gap and re-read from the database.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Every open worklist page. Messages carry no patient data, only "re-fetch your list".
WORKLIST_GROUP = "worklist"
WORKLIST_CHANGED = {"type": "worklist.changed"}


def report_group(report_id: int) -> str:
    return f"report-{report_id}"


def worklist_changed() -> None:
    """Tell open worklists that a study arrived or a report changed (call after commit)."""
    async_to_sync(get_channel_layer().group_send)(WORKLIST_GROUP, WORKLIST_CHANGED)


class ReportPublisher:
    """Sends to report groups on one private event loop, reusing its Redis connections.

    (``async_to_sync`` per message would open a new loop, and connections, each time.)
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._layer = get_channel_layer()

    def _send(self, report_id: int, message: dict) -> None:
        # A lost message costs nothing lasting (the database holds the text and clients
        # resync), so Redis being away must not fail the draft.
        try:
            self._loop.run_until_complete(self._layer.group_send(report_group(report_id), message))
        except (OSError, RedisError) as exc:
            logger.warning("report %s: could not publish to its stream (%s)", report_id, exc)

    def chunk(self, *, report_id: int, attempt: int, stream: str, seq: int, offset: int, text: str) -> None:
        self._send(
            report_id,
            {
                "type": "draft.chunk",
                "attempt": attempt,
                "stream": stream,
                "seq": seq,
                "offset": offset,
                "text": text,
            },
        )

    def state_changed(self, *, report_id: int) -> None:
        """Tell subscribers to re-read the report (status, final text) from the database."""
        self._send(report_id, {"type": "draft.state"})
        # The draft's state is a worklist column too (queued -> drafting -> drafted / failed).
        self._loop.run_until_complete(self._layer.group_send(WORKLIST_GROUP, WORKLIST_CHANGED))

    def close(self) -> None:
        # channels-redis closes this loop's connections (only these) when the loop closes.
        self._loop.close()
