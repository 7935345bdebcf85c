"""Spoken commands: the one table of what a phrase does in the editor instead of being typed.

``transcript_operations`` turns a transcript into what the editor does, in order: ``insert``
text (after a space unless ``join``), ``next_field``, ``previous_field``, or ``scratch`` (remove
what the last dictation inserted). The browser carries them out (static/medportal/dictation.js).
"""

from __future__ import annotations

import re

# phrase (lower case, words separated by one space) -> operation
COMMANDS: dict[str, dict] = {
    "next field": {"op": "next_field"},
    "previous field": {"op": "previous_field"},
    "new paragraph": {"op": "insert", "text": "\n\n", "join": True},
    "new line": {"op": "insert", "text": "\n", "join": True},
    "period": {"op": "insert", "text": ".", "join": True},
    "full stop": {"op": "insert", "text": ".", "join": True},
    "comma": {"op": "insert", "text": ",", "join": True},
    "colon": {"op": "insert", "text": ":", "join": True},
    "semicolon": {"op": "insert", "text": ";", "join": True},
    "question mark": {"op": "insert", "text": "?", "join": True},
    "scratch that": {"op": "scratch"},
}
_LONGEST = max(len(phrase.split()) for phrase in COMMANDS)
# What a recogniser may write around a spoken command word ("Period." "comma,").
_EDGES = re.compile(r"^[^\w]+|[^\w]+$")


def _plain(word: str) -> str:
    return _EDGES.sub("", word).lower()


def transcript_operations(text: str) -> list[dict]:
    """The editor operations of one transcript: its words, with each command phrase done."""
    words = text.split()
    operations: list[dict] = []
    typed: list[str] = []

    def type_words() -> None:
        if typed:
            operations.append({"op": "insert", "text": " ".join(typed), "join": False})
            typed.clear()

    at = 0
    while at < len(words):
        for length in range(min(_LONGEST, len(words) - at), 0, -1):
            phrase = " ".join(_plain(word) for word in words[at : at + length])
            if phrase in COMMANDS:
                type_words()
                operations.append(dict(COMMANDS[phrase]))
                at += length
                break
        else:
            typed.append(words[at])
            at += 1
    type_words()
    return operations
