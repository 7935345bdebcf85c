"""The OHIF Viewer under /viewer/: its files, its deep links, and its configuration.

Everything here needs a login with a role that views studies (the viewer's code is public, but
a page under /viewer/ is only useful with a session, and an anonymous visitor is sent to log in).
The Content-Security-Policy is MedPortal's strict one, relaxed for these responses only, and only
as far as OHIF needs (see ``VIEWER_CSP``); the study page may frame them (same origin only).
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_safe

from medportal.access.guards import role_required
from medportal.access.roles import CAN_VIEW_STUDIES
from medportal.imaging.viewing import viewing_start_for_link
from medportal.ohif.config import app_config_for

# OHIF's needs beyond MedPortal's own policy: WebAssembly compilation for its image codecs
# ('wasm-unsafe-eval', not 'unsafe-eval'), workers from its own files and from blob: URLs,
# inline styles (React and its CSS-in-JS set them), images and fonts from data: and blob: URLs
# it makes itself, fetches of data: and blob: URLs (its ZSTD decoder fetches its WebAssembly from
# a data: URL); and framing by MedPortal's own pages (the study page's reading room).
VIEWER_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "'wasm-unsafe-eval'"],
    "worker-src": ["'self'", "blob:"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'", "blob:", "data:"],
    "media-src": ["'self'", "blob:"],
    "frame-ancestors": ["'self'"],
    "form-action": ["'self'"],
    "base-uri": ["'none'"],
    "object-src": ["'none'"],
}
# Bundles whose names carry their content hash never change: the browser keeps them.
_HASHED = re.compile(r"\.[0-9a-f]{16}\.|^[0-9a-f]{16}\.")


class ViewerNotInstalled(Exception):
    pass


def viewer_dist() -> Path:
    dist = Path(settings.MEDPORTAL_OHIF_DIR) / "dist"
    if not (dist / "index.html").is_file():
        raise ViewerNotInstalled
    return dist


def _viewer_response(response: HttpResponse) -> HttpResponse:
    response._csp_replace = VIEWER_CSP  # read by django-csp's middleware
    return response


def _not_installed() -> HttpResponse:
    return HttpResponse(
        "The OHIF viewer is not installed on this server: run bin/setup (it needs Node.js and npm).",
        status=503,
        content_type="text/plain; charset=utf-8",
    )


def _file(request: HttpRequest, path: Path, *, cache: str) -> HttpResponse:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".wasm":
        content_type = "application/wasm"
    if content_type.startswith("text/") or content_type in {"application/javascript", "application/json"}:
        content_type += "; charset=utf-8"
    packed = path.with_name(path.name + ".gz")
    if "gzip" in request.headers.get("Accept-Encoding", "") and packed.is_file():
        response = HttpResponse(packed.read_bytes(), content_type=content_type)
        response["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(path.read_bytes(), content_type=content_type)
    patch_vary_headers(response, ["Accept-Encoding"])
    response["Cache-Control"] = cache
    return response


@require_safe
@role_required(*CAN_VIEW_STUDIES)
@xframe_options_sameorigin
def viewer_app(request: HttpRequest, path: str = "") -> HttpResponse:
    """A file of the viewer's build, else (a route of the single-page app) its index.html."""
    try:
        dist = viewer_dist()
    except ViewerNotInstalled:
        return _viewer_response(_not_installed())
    if path and not path.endswith("/"):
        target = (dist / path).resolve()
        if target.is_relative_to(dist.resolve()) and target.is_file() and not target.name.startswith("."):
            if target.suffix == ".gz":
                raise Http404
            hashed = bool(_HASHED.search(target.name))
            cache = "private, max-age=31536000, immutable" if hashed else "private, no-cache"
            return _viewer_response(_file(request, target, cache=cache))
        if "." in path.rsplit("/", 1)[-1]:
            raise Http404("no such file in the viewer")  # a missing asset, not a page of the app
    studies = [uid for value in request.GET.getlist("StudyInstanceUIDs") for uid in value.split(",") if uid]
    if not studies:
        # OHIF's own study list is off: the worklist is where studies are chosen.
        return HttpResponseRedirect(reverse("worklist"))
    viewing_start_for_link(request=request, study_uids=studies)
    return _viewer_response(_file(request, dist / "index.html", cache="private, no-cache"))


@require_safe
@role_required(*CAN_VIEW_STUDIES)
@xframe_options_sameorigin
def viewer_config(request: HttpRequest) -> HttpResponse:
    """``app-config.js``: made per request (the DICOMweb root is this site's own origin)."""
    response = HttpResponse(app_config_for(request), content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "private, no-cache"
    return _viewer_response(response)
