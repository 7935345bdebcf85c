"""Publishing a report's draft to its group from outside a consumer (the worker).

Messages are at-most-once: every chunk carries its stream (attempt and claim:
the text starts again when either changes), sequence number and character
offset, so that a client can spot a gap and re-read from the database.
"""

from __future__ import annotations

import asyncio

from channels.layers import get_channel_layer


def report_group(report_id: int) -> str:
    return f"report-{report_id}"


class ReportPublisher:
    """Sends to report groups on one private event loop, reusing its Redis connections.

    (``async_to_sync`` per message would open a new loop, and connections, each time.)
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._layer = get_channel_layer()

    def _send(self, report_id: int, message: dict) -> None:
        self._loop.run_until_complete(self._layer.group_send(report_group(report_id), message))

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

    def close(self) -> None:
        # channels-redis closes this loop's connections (only these) when the loop closes.
        self._loop.close()
