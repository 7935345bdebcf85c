"""How MedPortal names a person on its pages and in its outputs."""

from __future__ import annotations

from typing import Any


def display_name(user: Any) -> str:
    """Full name, else username; empty for no one."""
    return (user.get_full_name() or user.get_username()) if user else ""
