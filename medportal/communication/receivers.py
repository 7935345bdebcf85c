"""What this app listens to: nothing yet beyond its own pages (follow-ups add a study's arrival)."""

from __future__ import annotations


def connect() -> None:
    return None
