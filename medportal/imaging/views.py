from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotModified,
)
from django.shortcuts import get_object_or_404, render
from django.utils.cache import patch_vary_headers

from medportal.access.guards import role_required
from medportal.access.roles import CAN_VIEW_STUDIES
from medportal.audit.models import Action, EventType
from medportal.imaging.auditing import study_audit
from medportal.imaging.header import instance_header
from medportal.imaging.models import Instance
from medportal.imaging.services import instance_render_png
from medportal.imaging.viewer import ViewerParamError, image_params

# Bump when the rendering changes, so browsers drop images rendered the old way.
RENDER_VERSION = 2


def _instance_or_404(instance_id: int) -> Instance:
    return get_object_or_404(Instance.objects.select_related("series__study__patient"), pk=instance_id)


def instance_audit(request: HttpRequest, instance: Instance, description: str, detail: dict) -> None:
    """A look at one instance (its image or its header)."""
    study_audit(
        instance.series.study,
        description,
        event_type=EventType.INSTANCES_ACCESSED,
        action=Action.READ,
        request=request,
        object_type="instance",
        object_id=instance.pk,
        detail=detail,
    )


@role_required(*CAN_VIEW_STUDIES)
def instance_image(request: HttpRequest, instance_id: int) -> HttpResponse:
    """The image as PNG; ``wc``/``ww`` a window (else the header's), ``size`` a thumbnail."""
    instance = _instance_or_404(instance_id)
    try:
        frame = int(request.GET.get("frame", 0))
    except ValueError:
        raise Http404("no such frame") from None
    if not instance.is_image:
        raise Http404("this object is not an image")
    if not 0 <= frame < instance.number_of_frames:
        raise Http404("no such frame")
    try:
        params = image_params(request.GET)
    except ViewerParamError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    # Every fetch is a look at patient data, a wheel-scroll's frame or a thumbnail alike.
    instance_audit(request, instance, "Image viewed", {"frame": frame, **params.audit_detail()})
    etag = f'"{instance.sha256[:32]}-{frame}-{params.etag_part()}-r{RENDER_VERSION}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponseNotModified()
    else:
        window = params.window
        try:
            png = instance_render_png(
                instance=instance,
                frame=frame,
                center=window.center if window else None,
                width=window.width if window else None,
                size=params.size,
            )
        except Exception as exc:  # stored before ingest was strict: say why, never a 500
            reason = f"This image cannot be shown: {exc}"[:300]
            return HttpResponse(reason, status=422, content_type="text/plain; charset=utf-8")
        response = HttpResponse(png, content_type="image/png")
    response["ETag"] = etag
    # Patient images stay out of shared caches.
    # Revalidate every time (a cheap 304 by ETag), so that every look at an image is audited.
    response["Cache-Control"] = "private, no-cache"
    return response


@role_required(*CAN_VIEW_STUDIES)
def instance_header_view(request: HttpRequest, instance_id: int) -> HttpResponse:
    """The instance's DICOM header: a table for htmx, or a page of its own."""
    instance = _instance_or_404(instance_id)
    rows = instance_header(instance=instance)
    # The header names the patient: the roles that may view studies see it, and it is recorded.
    instance_audit(request, instance, "Header viewed", {"header": True})
    context = {"instance": instance, "study": instance.series.study, "rows": rows}
    template = "imaging/instance_header.html#header" if request.htmx else "imaging/instance_header.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response
