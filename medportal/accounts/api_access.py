"""The automation API's guard: token authentication, roles per endpoint, JSON errors."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from medportal.access.roles import Role, has_role
from medportal.accounts.tokens import user_for_authorization_header
from medportal.request_text import json_unstorable_reason


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def api_json_body(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    if problem := json_unstorable_reason(body):
        raise ApiError(400, f"The request cannot be stored: {problem}.")
    return body


def api_endpoint(*, methods: tuple[str, ...], roles: tuple[Role, ...]) -> Callable:
    """For the automation API: ``Authorization: Token <key>``, JSON in and out."""

    def decorator(view):
        @csrf_exempt  # token-authenticated; no cookies are used
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            user = user_for_authorization_header(request.headers.get("Authorization"))
            if user is None:
                response = JsonResponse(
                    {"error": "Authentication required: send 'Authorization: Token <key>'."}, status=401
                )
                response["WWW-Authenticate"] = "Token"
                return response
            request.user = user
            if request.method not in methods:
                return JsonResponse({"error": f"Method {request.method} is not allowed here."}, status=405)
            if not has_role(user, *roles):
                return JsonResponse({"error": "Your role does not allow this."}, status=403)
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return JsonResponse({"error": exc.message, **exc.extra}, status=exc.status)
            except Http404:
                return JsonResponse({"error": "Not found."}, status=404)

        return wrapper

    return decorator
