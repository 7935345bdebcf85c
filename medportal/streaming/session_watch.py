"""Websockets opened with a browser session close when that session ends: idle, lifetime, or
its account deactivated or given a new password."""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.utils.crypto import constant_time_compare

from medportal.accounts.sessions import session_expiry

CLOSE_SESSION_EXPIRED = 4401


def _session_expired(scope) -> bool:
    session = scope.get("session")
    if session is None or not session.session_key or scope.get("token_authenticated"):
        return False  # scripts with a token have no session to expire
    fresh = session.__class__(session_key=session.session_key)
    if not fresh.get(SESSION_KEY) or session_expiry(fresh) is not None:
        return True
    # As a page's request would find: the account deactivated, or its password changed
    # (an admin's reset), and the session no longer logs anyone in.
    user = get_user_model().objects.filter(pk=fresh[SESSION_KEY]).first()
    return (
        user is None
        or not user.is_active
        or not constant_time_compare(fresh.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash())
    )


class SessionWatchMixin:
    """For AsyncWebsocketConsumers: refuse an expired session, and close when it expires later."""

    _session_watch: asyncio.Task | None = None

    async def session_is_valid(self) -> bool:
        return not await database_sync_to_async(_session_expired)(self.scope)

    def watch_session(self) -> None:
        self._session_watch = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(settings.SESSION_WATCH_SECONDS)
            if not await self.session_is_valid():
                await self.close(code=CLOSE_SESSION_EXPIRED)
                return

    def stop_watching_session(self) -> None:
        if self._session_watch is not None:
            self._session_watch.cancel()
