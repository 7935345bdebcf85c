"""A websocket client for report streams that follows the protocol as the browser does:
snapshot first, then chunks by offset; on a gap, ask for a fresh snapshot."""

from __future__ import annotations

import json
import time


class DraftFollower:
    def __init__(self, ws):
        self.ws = ws
        self.text = ""
        self.stream: str | None = None
        self.status: str | None = None
        self.pending: dict[int, str] = {}
        self.chunks: list[dict] = []
        self.snapshots: list[dict] = []
        self.resyncs = 0
        self.live_text_at_end: str | None = None

    def _apply_pending(self) -> None:
        progressed = True
        while progressed:
            progressed = False
            for offset in sorted(self.pending):
                if offset <= len(self.text):
                    piece = self.pending.pop(offset)
                    if offset + len(piece) > len(self.text):
                        self.text += piece[len(self.text) - offset :]
                    progressed = True

    def handle(self, message: dict) -> None:
        if message["type"] == "snapshot":
            self.snapshots.append(message)
            if message["stream"] != self.stream:
                self.stream, self.text = message["stream"], message["text"]
                self.pending.clear()
            elif len(message["text"]) > len(self.text):
                self.text = message["text"]
            self.status = message["status"]
        elif message["type"] == "chunk":
            self.chunks.append(message)
            if message["stream"] != self.stream:
                self.resyncs += 1
                self.ws.send(json.dumps({"type": "resync"}))
                return
            self.pending[message["offset"]] = message["text"]
        self._apply_pending()
        if self.pending:
            self.resyncs += 1
            self.ws.send(json.dumps({"type": "resync"}))

    def receive(self, timeout: float) -> dict:
        message = json.loads(self.ws.recv(timeout=timeout))
        self.handle(message)
        return message

    def follow_to_end(self, timeout: float = 120) -> str:
        """Read until a snapshot says the draft ended; the text as it stood live is kept too.
        After 3 s of silence it asks for a snapshot, as the page does (the end may be lost)."""
        deadline = time.monotonic() + timeout
        while True:
            live = self.text
            if time.monotonic() > deadline:
                raise TimeoutError("the draft did not end in time")
            try:
                message = self.receive(timeout=min(3.0, max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                self.ws.send(json.dumps({"type": "resync"}))
                continue
            if message["type"] == "snapshot" and message["status"] not in ("queued", "drafting", "received"):
                self.live_text_at_end = live
                return self.text
