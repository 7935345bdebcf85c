"""pynetdicom's association threads, made to wait for what they act on rather than poll.

pynetdicom runs two loops per association: the DUL reactor (reads PDUs from the socket, sends
the primitives queued for the peer) and the association reactor (hands each complete DIMSE
message to its service). Both sleep 1 ms whenever a turn found nothing to do, so a C-STORE
waits up to a millisecond to be read, another to reach its handler and another for its
response to be sent: ~3 ms of each instance's round trip, with a peer that sends the next
instance only on the answer to the last. Here the DUL reactor waits in ``select`` on the
socket and on a wake-up that every queued primitive sends, and the association reactor waits
on its message queue, without the 1 ms sleep it takes at the top of every turn; both still wake
every few milliseconds for their timers and for the end of the association, as they did.

Only the server's acceptor associations are changed (through pynetdicom's ``request_handler``
hook), before their threads start; the subclasses add these waits and nothing else. The server
also hands every association its one list of supported presentation contexts instead of a deep
copy each (negotiation only reads them; copying ~200 contexts cost ~20 ms per association).
"""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import ssl
import threading
import time
from typing import Any

import pynetdicom.association
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dul import DULServiceProvider
from pynetdicom.transport import RequestHandler

# How long a reactor waits at most before it looks at its timers and kill flag again.
IDLE_WAIT_S = 0.005
# The sleep pynetdicom's association reactor takes at the top of each turn (pynetdicom 3.0.4,
# pinned; its other sleeps in that module are 0.1 ms polls and the 10 ms wait for its DUL to end).
REACTOR_TURN_SLEEP_S = 0.001


class _WakingQueue(queue.Queue):
    """The DUL's queue of primitives to send: each put wakes the DUL reactor."""

    def __init__(self, wake: socket.socket):
        super().__init__()
        self._wake = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        # Full: it is awake already; closed: the association has ended.
        with contextlib.suppress(OSError):
            self._wake.send(b"\0")


class _PromptDul(DULServiceProvider):
    """A DUL reactor that waits for the socket or a primitive to send instead of sleeping."""

    def make_prompt(self) -> None:
        self._run_loop_delay = 0  # its sleep: the wait below takes its place
        self._wake_read, wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        wake_write.setblocking(False)
        self.to_provider_queue = _WakingQueue(wake_write)

    def _process_recv_primitive(self) -> bool:
        # Called first in each turn of the reactor: with nothing to send and no event to act
        # on, wait here (instead of the 1 ms sleep) until the peer sends or a primitive is queued.
        if self.to_provider_queue.empty() and self.event_queue.empty():
            self._wait()
        return super()._process_recv_primitive()

    def _wait(self) -> None:
        peer = getattr(self.socket, "socket", None)
        if isinstance(peer, ssl.SSLSocket) and peer.pending():
            return  # TLS has data buffered that select() cannot see
        watched = [self._wake_read] if peer is None else [self._wake_read, peer]
        try:
            ready, _, _ = select.select(watched, [], [], IDLE_WAIT_S)
        except (OSError, ValueError):  # the socket closed: the reactor finds out itself
            return
        if self._wake_read in ready:
            try:
                while self._wake_read.recv(4096):
                    pass
            except OSError:  # drained
                pass


class _PromptDimse(DIMSEServiceProvider):
    """The association reactor asks for the next message without blocking, then sleeps 1 ms;
    here that ask waits for a message (a while), so one is served as soon as it is whole."""

    def get_msg(self, block: bool = False) -> Any:
        if block or threading.current_thread() is not self.assoc:
            return super().get_msg(block)
        try:
            return self.msg_queue.get(timeout=IDLE_WAIT_S)
        except queue.Empty:
            return None, None


class _ReactorClock:
    """``time`` as pynetdicom's association module sees it: in a prompt association's own
    thread the reactor's turn sleep is skipped (its ``get_msg`` waits on the queue instead);
    every other call, and every other thread, gets the real ``time``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        thread = threading.current_thread()
        if seconds == REACTOR_TURN_SLEEP_S and isinstance(getattr(thread, "dimse", None), _PromptDimse):
            return
        time.sleep(seconds)


pynetdicom.association.time = _ReactorClock()  # type: ignore[assignment]


class SharedContexts(list):
    """The server's supported presentation contexts, given to each association as they are:
    pynetdicom deep-copies them per association, and negotiation only reads them."""

    def __deepcopy__(self, memo: dict) -> SharedContexts:
        return self


class PromptRequestHandler(RequestHandler):
    """Creates each acceptor association with the waiting reactors above."""

    def _create_association(self) -> Association:
        association = super()._create_association()
        association.dul.__class__ = _PromptDul
        association.dul.make_prompt()
        association.dimse.__class__ = _PromptDimse
        return association
