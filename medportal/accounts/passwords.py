"""A password validator that refuses passwords made mostly of repeated or sequential characters.

NIST SP 800-63B (5.1.1.2) asks verifiers to refuse "repetitive or sequential characters
(e.g. 'aaaaaa', '1234abcd')" beside known common passwords; Django's validators catch
neither ``aaaaaaaaaaaa`` nor ``qwertyuiop12``. A character is predictable when it repeats the
one before it, continues an alphabetic or numeric run (up or down, ``9`` then ``0``), or is
the neighbour of the one before it on a keyboard row; a password that is a short unit written
again and again counts only that unit. Too few unpredictable characters: refused.
"""

from __future__ import annotations

import itertools

from django.core.exceptions import ValidationError

_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "abcdefghijklmnopqrstuvwxyz")


def _neighbours(a: str, b: str) -> bool:
    """``b`` follows ``a`` in a run: the next or the previous of a row (digits wrap 9 -> 0)."""
    if a.isdigit() and b.isdigit():
        return (int(b) - int(a)) % 10 in (1, 9)
    for row in _ROWS:
        i, j = row.find(a), row.find(b)
        if i >= 0 and j >= 0 and abs(i - j) == 1:
            return True
    return False


def _unit(text: str) -> str:
    """The shortest unit that ``text`` repeats (``abcabcab`` -> ``abc``), or ``text`` itself."""
    for size in range(1, len(text) // 2 + 1):
        if all(text[i] == text[i - size] for i in range(size, len(text))):
            return text[:size]
    return text


def unpredictable_characters(password: str) -> int:
    """How many characters of ``password`` neither repeat nor continue the one before them."""
    text = _unit(password.lower())
    count = 1 if text else 0
    for previous, current in itertools.pairwise(text):
        if current != previous and not _neighbours(previous, current):
            count += 1
    return count


class RepetitiveOrSequentialValidator:
    """AUTH_PASSWORD_VALIDATORS entry; ``min_unpredictable`` is the least acceptable count."""

    def __init__(self, min_unpredictable: int = 6):
        self.min_unpredictable = min_unpredictable

    def validate(self, password: str, user=None) -> None:
        if unpredictable_characters(password) < self.min_unpredictable:
            raise ValidationError(
                "This password is mostly repeated or sequential characters (like “aaaa”, “abcd”, "
                "“1234” or “qwerty”), which are guessed first. Use a few unrelated words instead.",
                code="password_repetitive_or_sequential",
            )

    def get_help_text(self) -> str:
        return "Your password can’t be mostly repeated or sequential characters (aaaa, abcd, 1234, qwerty)."
