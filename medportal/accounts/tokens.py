"""Token authentication for the API and websockets: ``Authorization: Token <key>``."""

from __future__ import annotations

import datetime

from django.utils import timezone

from medportal.accounts.models import ApiToken, hash_token

LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


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
    # To the minute: a DICOMweb client's request per frame does not each write the token's row.
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
