"""Token authentication for the API and websockets: ``Authorization: Token <key>``."""

from __future__ import annotations

from django.utils import timezone

from medportal.accounts.models import ApiToken, hash_token


def user_for_authorization_header(header: str | None):
    """The active user a ``Token`` header names, or None."""
    if not header:
        return None
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "token" or not key.strip():
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(key.strip())).first()
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user
