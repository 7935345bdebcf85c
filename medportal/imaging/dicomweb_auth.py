"""Who may call DICOMweb: a token (any method), or a login session for reads from MedPortal's own pages.

The reading room's viewer (OHIF, served by MedPortal under /viewer/) reads DICOMweb with the
user's session, so that no token is ever put in a page. A session counts only for safe methods
(GET, HEAD) and only for requests from MedPortal's own origin (``Sec-Fetch-Site`` and
``Origin``, where the browser sends them): another site's page cannot make the user's browser
read images for it. STOW-RS and every other change needs a token.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from medportal.access.roles import Role, has_role
from medportal.accounts.api_access import ApiError
from medportal.accounts.tokens import user_for_authorization_header

SAFE_METHODS = ("GET", "HEAD")


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def same_origin(request: HttpRequest) -> bool:
    """Whether the browser says the request comes from this site's own pages (or the address bar)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    return not origin or origin == f"{request.scheme}://{request.get_host()}"


def dicomweb_endpoint(*, roles: tuple[Role, ...], methods: tuple[str, ...] = SAFE_METHODS) -> Callable:
    """A DICOMweb read: ``Authorization: Token <key>``, or a same-origin login session.

    A token's requests are tied together for the audit trail's viewing sessions by
    ``request.dicomweb_channel`` (the token's digest, never the key); a session's by the session
    (``imaging.viewing.channel_for``)."""

    def decorator(view):
        @csrf_exempt  # reads only; a session is accepted for safe methods alone
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            header = request.headers.get("Authorization")
            if header:
                user = user_for_authorization_header(header)
            else:
                user = request.user if request.user.is_authenticated else None
            if user is None:
                response = _error(
                    401, "Authentication required: send 'Authorization: Token <key>' or log in."
                )
                response["WWW-Authenticate"] = "Token"
                return response
            if request.method not in methods:
                return _error(405, f"Method {request.method} is not allowed here.")
            if not header and not same_origin(request):
                return _error(403, "A login session reads DICOMweb only from MedPortal's own pages.")
            request.user = user
            if header:
                request.dicomweb_channel = "token:" + hashlib.sha256(header.encode()).hexdigest()[:32]
            if not has_role(user, *roles):
                return _error(403, "Your role does not allow this.")
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return JsonResponse({"error": exc.message, **exc.extra}, status=exc.status)
            except Http404:
                return _error(404, "Not found.")

        return wrapper

    return decorator
