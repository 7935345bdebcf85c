"""Session lifetime: an idle timeout and an absolute limit after login, for pages and websockets."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

from medportal.audit.models import Action, EventType
from medportal.audit.services import audit_record

LOGIN_AT = "medportal_login_at"
LAST_SEEN = "medportal_last_seen"
# Requests a page makes by itself (polling) do not count as the user being active.
BACKGROUND_HEADER = "X-MedPortal-Background"
# Activity is recorded to within this many seconds, so that a viewer's hundreds of image requests
# a minute do not each write the session.
LAST_SEEN_RESOLUTION_SECONDS = 10


def session_expiry(session, now: float | None = None) -> str | None:
    """Why this session has expired ("idle" or "lifetime"), or None while it is valid."""
    now = time.time() if now is None else now
    login_at, last_seen = session.get(LOGIN_AT), session.get(LAST_SEEN)
    if login_at is not None and now - login_at > settings.SESSION_ABSOLUTE_SECONDS:
        return "lifetime"
    if last_seen is not None and now - last_seen > settings.SESSION_IDLE_SECONDS:
        return "idle"
    return None


def session_start(session) -> None:
    session[LOGIN_AT] = session[LAST_SEEN] = time.time()


def _explain(reason: str) -> str:
    if reason == "idle":
        return f"You were logged out after {settings.SESSION_IDLE_SECONDS // 60} minutes without activity."
    return f"You were logged out: a session lasts at most {settings.SESSION_ABSOLUTE_SECONDS // 3600} hours."


class SessionLifetimeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and hasattr(request, "session"):
            reason = session_expiry(request.session)
            if reason:
                audit_record(
                    event_type=EventType.USER_AUTHENTICATION,
                    action=Action.EXECUTE,
                    description=f"Session expired ({reason})",
                    request=request,
                )
                logout(request)
                messages.info(request, _explain(reason))
                response = redirect_to_login(request.get_full_path())
                if request.headers.get("HX-Request"):
                    response["HX-Redirect"] = response["Location"]
                return response
            now = time.time()
            last_seen = request.session.get(LAST_SEEN) or 0
            if not request.headers.get(BACKGROUND_HEADER) and now - last_seen >= LAST_SEEN_RESOLUTION_SECONDS:
                request.session[LAST_SEEN] = now
        return self.get_response(request)
