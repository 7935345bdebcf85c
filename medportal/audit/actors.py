"""Who acts when no person does: the process itself, named once at its start.

A Celery worker names itself ``worker:<node name>`` (``celery@gpu1``, ``interfaces@host``);
its audit events (an AI draft reading a study, writing its draft, an HL7 send) carry that
name instead of an empty user.
"""

from __future__ import annotations

_actor = ""


def process_actor_set(name: str) -> None:
    global _actor
    _actor = name[:150]


def process_actor() -> str:
    """This process's name as an actor; empty in the web server, where a request names the user."""
    return _actor
