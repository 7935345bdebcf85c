"""MLLP (HL7's Minimal Lower Layer Protocol) over TCP: one message, one ACK, one connection.

A frame is <VT> message <FS><CR>. A connection per message keeps the client simple; receivers
accept it, and nothing is held open to an EHR that may restart at night.
"""

from __future__ import annotations

import socket
import time

START, END = b"\x0b", b"\x1c\r"
MAX_ANSWER_BYTES = 1024 * 1024  # an ACK is a few hundred bytes; a receiver that streams more is broken


class DeliveryError(Exception):
    """The message may not have arrived: no connection, no ACK in time, or no ACK at all. Retried."""


def frame(payload: bytes) -> bytes:
    return START + payload + END


def exchange(*, host: str, port: int, payload: bytes, timeout: float) -> bytes:
    """Send one framed message and return the receiver's answer, unframed.

    ``timeout`` bounds the connection and, separately, the wait for the whole answer."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise DeliveryError(f"Cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
    with sock:
        try:
            sock.sendall(frame(payload))
            return _read_frame(sock, deadline=time.monotonic() + timeout, timeout=timeout)
        except TimeoutError as exc:
            raise DeliveryError(f"No ACK from {host}:{port} within {timeout:g} s") from exc
        except OSError as exc:
            raise DeliveryError(f"Connection to {host}:{port} failed: {exc.strerror or exc}") from exc


def _read_frame(sock: socket.socket, *, deadline: float, timeout: float) -> bytes:
    answer = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            raise DeliveryError("The receiver closed the connection without sending an ACK")
        answer += chunk
        end = answer.find(END)
        if end != -1:
            start = answer.find(START)
            return answer[start + 1 if 0 <= start < end else 0 : end]
        if len(answer) > MAX_ANSWER_BYTES:
            raise DeliveryError("The receiver's answer is not an MLLP frame (no end after 1 MiB)")
