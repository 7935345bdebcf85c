"""What the radiologist changed in the AI draft: a word-level diff for the editor to show."""

from __future__ import annotations

import difflib
import re
from typing import Literal, NamedTuple

# A word, a punctuation mark or a run of whitespace ("effusion." is two: a word inserted
# before the full stop is just that word). Joined back, the tokens give the text exactly.
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
# Past this many words (and spaces) on either side a word diff costs too much time
# (difflib is quadratic at worst): such texts are compared line by line instead.
MAX_UNITS = 6000


class DiffPiece(NamedTuple):
    op: Literal["equal", "insert", "delete"]
    text: str


def _units(old: str, new: str) -> tuple[list[str], list[str]]:
    """Words and whitespace; lines when either text is too long for that; else each whole."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    if max(len(a), len(b)) <= MAX_UNITS:
        return a, b
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    if max(len(a), len(b)) <= MAX_UNITS:
        return a, b
    return [old] if old else [], [new] if new else []


def text_diff(old: str, new: str) -> list[DiffPiece]:
    """``old`` turned into ``new``, as pieces kept, deleted or inserted, word by word.

    Whitespace is kept as it is, so the "equal" and "insert" pieces joined give ``new``,
    and the "equal" and "delete" pieces joined give ``old``. A replaced word comes as its
    deletion followed by its insertion.
    """
    a, b = _units(old, new)
    # No automatic junk: spaces are the most common token and must still anchor matches.
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    # Runs of [kept text] or [deleted, inserted]; a change, a mere space, and a change
    # read better as one change ("<del>small left</del><ins>large right</ins>").
    runs: list[list[str]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        deleted, inserted = "".join(a[i1:i2]), "".join(b[j1:j2])
        if tag == "equal":
            runs.append([deleted])
        elif len(runs) >= 2 and len(runs[-2]) == 2 and len(runs[-1]) == 1 and _is_space(runs[-1][0]):
            space = runs.pop()[0]
            runs[-1] = [runs[-1][0] + space + deleted, runs[-1][1] + space + inserted]
        elif runs and len(runs[-1]) == 2:
            runs[-1] = [runs[-1][0] + deleted, runs[-1][1] + inserted]
        else:
            runs.append([deleted, inserted])
    pieces: list[DiffPiece] = []
    for run in runs:
        if len(run) == 1:
            pieces.append(DiffPiece("equal", run[0]))
            continue
        if run[0]:
            pieces.append(DiffPiece("delete", run[0]))
        if run[1]:
            pieces.append(DiffPiece("insert", run[1]))
    return pieces


def _is_space(text: str) -> bool:
    """Spaces within a line (a paragraph break keeps the changes on either side apart)."""
    return text.isspace() and "\n" not in text


def is_changed(pieces: list[DiffPiece]) -> bool:
    return any(piece.op != "equal" for piece in pieces)
