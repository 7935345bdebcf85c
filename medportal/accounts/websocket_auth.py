"""Websocket authentication: a session cookie (browsers) or a Token header (scripts)."""

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async

from medportal.accounts.tokens import user_for_authorization_header


class _TokenAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        header = headers.get(b"authorization")
        if header:
            user = await database_sync_to_async(user_for_authorization_header)(header.decode("latin-1"))
            if user is not None:
                scope = dict(scope, user=user, token_authenticated=True)
        return await self.inner(scope, receive, send)


def TokenOrSessionAuthMiddleware(inner):  # noqa: N802  (mirrors AuthMiddlewareStack)
    # Session auth runs first and sets scope["user"]; a valid token overrides it.
    return AuthMiddlewareStack(_TokenAuthMiddleware(inner))
