"""Websocket authentication: a session cookie (browsers) or a Token header (scripts).

A browser session counts only once its login is complete: a user enrolled in two-factor
authentication who has given the password but not yet the code gets no websocket, on any
route, as they get no page.
"""

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async

from medportal.accounts.second_factor import second_factor_owed
from medportal.accounts.tokens import user_for_authorization_header
from medportal.audit.models import Action, EventType, Outcome
from medportal.audit.services import audit_record

# The login is not complete (the same code as an expired session: log in again).
CLOSE_LOGIN_INCOMPLETE = 4401


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


@database_sync_to_async
def _refused_for_second_factor(scope) -> bool:
    if scope.get("token_authenticated"):
        return False  # a token is the whole credential of a script, as on the API
    user = scope.get("user")
    if not second_factor_owed(user, scope.get("session")):
        return False
    client = scope.get("client")
    audit_record(
        event_type=EventType.USER_AUTHENTICATION,
        action=Action.EXECUTE,
        description="Websocket refused: second factor not given",
        outcome=Outcome.MINOR_FAILURE,
        user=user,
        network_address=client[0] if client else None,
        object_type="websocket",
        detail={"path": scope.get("path", "")},
    )
    return True


class _SecondFactorMiddleware:
    """Refuses the handshake of every websocket route while the session owes its second factor."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and await _refused_for_second_factor(scope):
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": CLOSE_LOGIN_INCOMPLETE})
            return None
        return await self.inner(scope, receive, send)


def TokenOrSessionAuthMiddleware(inner):  # noqa: N802  (mirrors AuthMiddlewareStack)
    # Session auth runs first and sets scope["user"]; a valid token overrides it; then the
    # second factor is checked for session users.
    return AuthMiddlewareStack(_TokenAuthMiddleware(_SecondFactorMiddleware(inner)))
