"""multipart/related (RFC 2387) as DICOMweb uses it: read a request part by part, write a response.

The reader streams: it holds one part at a time, so a STOW-RS request of a whole
study is never in memory at once, and a part over the size limit is skipped
rather than buffered.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import BinaryIO

_CHUNK = 1024 * 1024
_MAX_HEADER_BYTES = 16 * 1024


class MultipartError(Exception):
    """The body is not multipart/related as its Content-Type says."""


@dataclass
class Part:
    headers: dict[str, str]  # names lower-cased
    data: bytes  # empty when ``oversized``
    size: int
    oversized: bool = False
    truncated: bool = False  # the body ended inside this part

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def media_type(header: str) -> tuple[str, dict[str, str]]:
    """``multipart/related; type="application/dicom"; boundary=x`` as the type and its parameters."""
    message = Message()
    message["content-type"] = header or ""
    params = {key.lower(): value for key, value in message.get_params(failobj=[])[1:]}
    return message.get_content_type(), params


def parts_read(stream: BinaryIO, boundary: str, *, max_part_bytes: int) -> Iterator[Part]:
    """Each part of a multipart body read from ``stream`` (anything with ``read(n)``)."""
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    # A leading CRLF lets the first boundary (often at the very start) match the delimiter.
    buffer = bytearray(b"\r\n")
    eof = False

    def fill() -> bool:
        nonlocal eof
        if eof:
            return False
        chunk = stream.read(_CHUNK)
        if not chunk:
            eof = True
            return False
        buffer.extend(chunk)
        return True

    # The preamble, up to the first delimiter, is ignored.
    while (start := buffer.find(delimiter)) < 0:
        del buffer[: max(0, len(buffer) - len(delimiter))]
        if not fill():
            raise MultipartError("no part was found (the boundary never occurs)")
    del buffer[: start + len(delimiter)]
    while True:
        while len(buffer) < 2 and fill():
            pass
        if buffer[:2] == b"--" or not buffer:
            return  # the closing delimiter (or a body that ends right after a delimiter)
        while (line_end := buffer.find(b"\r\n")) < 0:
            if len(buffer) > _MAX_HEADER_BYTES or not fill():
                raise MultipartError("a boundary line does not end")
        del buffer[: line_end + 2]  # transport padding after the boundary
        while (headers_end := _headers_end(buffer)) < 0:
            if len(buffer) > _MAX_HEADER_BYTES or not fill():
                raise MultipartError("the headers of a part do not end")
        headers = _parse_headers(bytes(buffer[:headers_end]))
        del buffer[: headers_end + (2 if buffer[:2] == b"\r\n" else 4)]
        data = bytearray()
        size = 0
        oversized = False
        while (end := buffer.find(delimiter)) < 0:
            # Keep a tail that may be the start of a delimiter split across reads.
            keep = len(delimiter) - 1
            take = max(0, len(buffer) - keep)
            size += take
            if size > max_part_bytes:
                oversized = True
                data.clear()
            elif take:
                data.extend(buffer[:take])
            del buffer[:take]
            if not fill():
                size += len(buffer)
                yield Part(headers, b"" if oversized else bytes(data + buffer), size, oversized, True)
                return
        size += end
        if size > max_part_bytes:
            oversized = True
        yield Part(headers, b"" if oversized else bytes(data + buffer[:end]), size, oversized)
        del buffer[: end + len(delimiter)]


def _headers_end(buffer: bytearray) -> int:
    """Where the header block ends: 0 for a part without headers, else the blank line's offset."""
    if buffer[:2] == b"\r\n":
        return 0
    return buffer.find(b"\r\n\r\n")


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def new_boundary() -> str:
    return uuid.uuid4().hex


def part_bytes(data: bytes, content_type: str, boundary: str) -> bytes:
    """One part of a multipart response, delimiter included."""
    return b"".join(
        [f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode("latin-1"), data, b"\r\n"]
    )


def closing_bytes(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode("latin-1")
