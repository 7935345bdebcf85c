"""Zip uploads: unpack in memory, within limits, into files for ingest.

A zip is opened only from its bytes; member names are labels for people and
never become paths. Limits come from settings and are checked twice: against
the sizes the zip declares (cheap, before anything is inflated) and against the
bytes actually inflated (declared sizes can lie). A zip over a limit becomes one
refused entry, so ingest reports and audits it like any other refused file.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass

from django.conf import settings

from medportal.imaging.ingest import IncomingFile

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty zip's end record
_CHUNK = 1024 * 1024
# Operating-system clutter inside zipped folders; never images.
_CLUTTER = {".ds_store", "thumbs.db", "desktop.ini", "dicomdir"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ArchiveRefused(Exception):
    """The whole archive is refused; the message says why."""


def is_archive(data: bytes) -> bool:
    return data[:4] in ZIP_MAGICS


def member_label(archive_name: str, member_name: str) -> str:
    """How a member is named to people: ``archive.zip/inner/path``, control characters removed."""
    return _CONTROL.sub("?", f"{archive_name}/{member_name}")[:255]


@dataclass
class _Budget:
    """Shared by an archive and the archives inside it."""

    members: int = 0
    unpacked: int = 0


def _is_clutter(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return "__MACOSX" in parts or parts[-1].lower() in _CLUTTER or parts[-1].startswith("._")


def _check_declared(archive: zipfile.ZipFile, budget: _Budget) -> list[zipfile.ZipInfo]:
    members = [info for info in archive.infolist() if not info.is_dir() and not _is_clutter(info.filename)]
    budget.members += len(members)
    if budget.members > settings.MAX_ARCHIVE_MEMBERS:
        raise ArchiveRefused(f"it holds more than {settings.MAX_ARCHIVE_MEMBERS:,} files")
    declared = budget.unpacked + sum(info.file_size for info in members)
    if declared > settings.MAX_ARCHIVE_UNPACKED_BYTES:
        raise ArchiveRefused(f"it unpacks to more than {settings.MAX_ARCHIVE_UNPACKED_BYTES:,} bytes")
    for info in members:
        if info.flag_bits & 0x1:
            raise ArchiveRefused("it is encrypted")
        if info.file_size > settings.MAX_ARCHIVE_RATIO * max(info.compress_size, 1):
            raise ArchiveRefused(_ratio_reason(info))
    return members


def _ratio_reason(info: zipfile.ZipInfo) -> str:
    return (
        f"{_CONTROL.sub('?', info.filename)!r} is compressed more than "
        f"{settings.MAX_ARCHIVE_RATIO}:1 (a zip bomb?)"
    )


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget) -> bytes | None:
    """The member's bytes, or None when it is over the per-file limit (read no further)."""
    out = bytearray()
    allowed = settings.MAX_ARCHIVE_RATIO * max(info.compress_size, 1)
    with archive.open(info) as handle:
        while chunk := handle.read(_CHUNK):
            out += chunk
            budget.unpacked += len(chunk)
            if budget.unpacked > settings.MAX_ARCHIVE_UNPACKED_BYTES:
                raise ArchiveRefused(f"it unpacks to more than {settings.MAX_ARCHIVE_UNPACKED_BYTES:,} bytes")
            if len(out) > allowed:
                raise ArchiveRefused(_ratio_reason(info))
            if len(out) > settings.MAX_UPLOAD_FILE_BYTES:
                return None
    return bytes(out)


def _too_big() -> str:
    return f"the file is over the limit of {settings.MAX_UPLOAD_FILE_BYTES:,} bytes"


def _unpack(data: bytes, name: str, depth: int, budget: _Budget) -> list[IncomingFile]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise ArchiveRefused(f"it is not a readable zip file ({exc})") from None
    files: list[IncomingFile] = []
    with archive:
        for info in _check_declared(archive, budget):
            label = member_label(name, info.filename)
            if info.file_size > settings.MAX_UPLOAD_FILE_BYTES:
                files.append(IncomingFile(label, b"", refusal=_too_big()))
                continue
            try:
                content = _read_member(archive, info, budget)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
                raise ArchiveRefused(f"{label!r} cannot be unpacked ({exc})") from None
            if content is None:  # its declared size was a lie
                files.append(IncomingFile(label, b"", refusal=_too_big()))
            elif is_archive(content):
                if depth >= settings.MAX_ARCHIVE_NESTING:
                    raise ArchiveRefused(
                        f"it nests zip files more than {settings.MAX_ARCHIVE_NESTING} deep ({label!r})"
                    )
                files.extend(_unpack(content, label, depth + 1, budget))
            else:
                files.append(IncomingFile(label, content))
    return files


def archive_unpack(incoming: IncomingFile) -> list[IncomingFile]:
    """The files inside one zip; a zip over a limit becomes a single refused entry."""
    try:
        files = _unpack(incoming.data, incoming.name, 0, _Budget())
        if not files:
            raise ArchiveRefused("it holds no files")
    except ArchiveRefused as exc:
        return [IncomingFile(incoming.name, b"", refusal=f"zip file refused: {exc}")]
    return files


def archives_unpack(*, files: list[IncomingFile]) -> list[IncomingFile]:
    """Each zip among ``files`` replaced by its members (in order); other files as they are."""
    unpacked: list[IncomingFile] = []
    for incoming in files:
        if not incoming.refusal and is_archive(incoming.data):
            unpacked.extend(archive_unpack(incoming))
        else:
            unpacked.append(incoming)
    return unpacked
