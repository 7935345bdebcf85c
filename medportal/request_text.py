"""Text that cannot be stored: a NUL character (PostgreSQL text refuses it) or a lone UTF-16
surrogate (no UTF-8 encoding exists for it). Requests carrying either are refused with a 400
that says so, before any view reads them, instead of failing at the database with a 500."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Clients of these prefixes read JSON errors ({"error": ...}), as the API's other answers.
_JSON_PREFIXES = ("/api/", "/dicomweb/")


def text_unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "a NUL character (\\u0000)"
    return f"a lone surrogate (\\u{ord(found.group()):04x}), which is not a character"


def json_unstorable_reason(value: Any, *, where: str = "the body") -> str | None:
    """The first string in a parsed JSON value (keys too) that cannot be stored, and where it is."""
    if isinstance(value, str):
        reason = text_unstorable_reason(value)
        return f"{where} contains {reason}" if reason else None
    if isinstance(value, dict):
        for key, item in value.items():
            key_reason = text_unstorable_reason(key)
            if key_reason:
                return f"a key in {where} contains {key_reason}"
            reason = json_unstorable_reason(item, where=f'"{key}"')
            if reason:
                return reason
    if isinstance(value, list):
        for item in value:
            reason = json_unstorable_reason(item, where=where)
            if reason:
                return reason
    return None


class UnstorableTextMiddleware:
    """Refuses a path or query string holding NUL (``%00``): every view would otherwise hand it
    to a database query. (Django already turns undecodable bytes in them into U+FFFD.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = None
        if "\x00" in request.path:
            problem = "The address contains a NUL character (%00); no name or identifier holds one."
        elif any("\x00" in text for key, values in request.GET.lists() for text in (key, *values)):
            problem = "The query contains a NUL character (%00); no search value holds one."
        if problem is None:
            return self.get_response(request)
        if request.path.startswith(_JSON_PREFIXES):
            return JsonResponse({"error": problem}, status=400)
        return HttpResponseBadRequest(problem, content_type="text/plain; charset=utf-8")
