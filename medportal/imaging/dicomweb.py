"""DICOMweb (PS3.18) views: QIDO-RS search and WADO-RS retrieve, audited.

Reads take a token or, from MedPortal's own pages (the OHIF viewer), the login session
(``dicomweb_auth``). STOW-RS lives in ``intake.stow`` (every way a study arrives is
intake's) and takes a token only. Views here parse the request, call the query and
retrieve functions, audit, and shape the response. Looks at images are audited once per
viewing session (``viewing``); searches once per search.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from medportal.access.roles import CAN_RETRIEVE_INSTANCES, CAN_VIEW_STUDIES
from medportal.accounts.api_access import ApiError
from medportal.audit.models import Action, EventType
from medportal.audit.services import audit_record
from medportal.imaging import dicomweb_query as qido
from medportal.imaging.dicomweb_auth import dicomweb_endpoint
from medportal.imaging.dicomweb_frames import (
    FramesNotAcceptable,
    frame_numbers_parse,
    frames_accepted,
    frames_choose,
    frames_of,
    instance_dataset,
    stored_transfer_syntax,
)
from medportal.imaging.dicomweb_metadata import (
    frames_read,
    instance_metadata,
    instances_metadata,
    metadata_body,
)
from medportal.imaging.dicomweb_retrieve import (
    ANY,
    NotAcceptable,
    accepted_transfer_syntaxes,
    instance_dicom,
    instance_header,
    instance_rendered,
    rendered_media_type,
    transfer_syntax_choose,
)
from medportal.imaging.models import Instance
from medportal.imaging.multipart import closing_bytes, new_boundary, part_bytes
from medportal.imaging.viewer import THUMBNAIL_SIZE, THUMBNAIL_SIZES
from medportal.imaging.viewing import RETRIEVE, VIEW, viewing_active, viewing_record

DICOM_JSON = "application/dicom+json"


def by_method(**views: Callable) -> Callable:
    """One URL, a view per HTTP method (``/studies`` is QIDO-RS for GET and STOW-RS for POST)."""

    @csrf_exempt  # each view checks its own credentials (STOW-RS: a token only)
    def dispatch(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        view = views.get(request.method or "")
        if view is None:
            response = JsonResponse({"error": f"Method {request.method} is not allowed here."}, status=405)
            response["Allow"] = ", ".join(views)
            return response
        return view(request, *args, **kwargs)

    return dispatch


def url_for(request: HttpRequest) -> qido.UrlFor:
    """Absolute WADO-RS URLs of a study, a series or an instance, for RetrieveURL."""

    def build(*, study: str, series: str | None = None, instance: str | None = None) -> str:
        if instance is not None:
            path = reverse("dicomweb-instance", args=[study, series, instance])
        elif series is not None:
            path = reverse("dicomweb-series", args=[study, series])
        else:
            path = reverse("dicomweb-study", args=[study])
        return request.build_absolute_uri(path)

    return build


def _dicom_json(payload, *, status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(payload), content_type=DICOM_JSON, status=status)


def _wants_json(request: HttpRequest) -> None:
    accept = request.headers.get("Accept", "")
    if accept and not any(
        kind.split(";")[0].strip() in {DICOM_JSON, "application/json", "application/*", "*/*"}
        for kind in accept.split(",")
    ):
        raise ApiError(406, f"Results are sent as {DICOM_JSON}.")


# -- QIDO-RS ------------------------------------------------------------------------------------


def _one_study(request: HttpRequest) -> str:
    """The study a search names by its UID alone (``StudyInstanceUID=<one uid>``), else ""."""
    values = [v for raw in request.GET.getlist("StudyInstanceUID") for v in raw.split(",") if v.strip()]
    return values[0].strip() if len(values) == 1 else ""


def _within_viewing(request: HttpRequest, study_uid: str) -> bool:
    """A search within one study whose images this user is already looking at (a viewer
    opening it asks for the study and its series again and again): its viewing session's event
    covers it. Every other search is audited on its own."""
    return bool(study_uid) and viewing_active(request=request, study_uid=study_uid)


def _audit_search(request: HttpRequest, level: str, scope: dict, results: list[dict]) -> None:
    audit_record(
        event_type=EventType.QUERY,
        action=Action.EXECUTE,
        description=f"DICOMweb search for {level} (QIDO-RS)",
        request=request,
        study_uid=scope.get("study", ""),
        object_type=level,
        detail={
            "service": "QIDO-RS",
            "path": request.path[:500],
            "query": {key: [v[:200] for v in request.GET.getlist(key)] for key in list(request.GET)[:50]},
            "results": len(results),
        },
    )


def _search(request: HttpRequest, level: str, run: Callable[[qido.Query], tuple[list[dict], bool]], **scope):
    _wants_json(request)
    try:
        query = qido.query_parse(request.GET, level=level)
    except qido.QueryError as exc:
        raise ApiError(400, str(exc)) from None
    results, more = run(query)
    if not _within_viewing(request, scope.get("study") or _one_study(request)):
        _audit_search(request, level, scope, results)
    response = _dicom_json(results)
    warnings = []
    if query.ignored:
        warnings.append(
            f"The following query keys are not supported and were ignored: {', '.join(query.ignored)}"
        )
    if more:
        warnings.append("There are additional results that can be requested (use offset)")
    if warnings:
        response["Warning"] = ", ".join(f'299 medportal: "{text}"' for text in warnings)
    return response


@dicomweb_endpoint(roles=CAN_VIEW_STUDIES)
def studies_search(request: HttpRequest) -> HttpResponse:
    return _search(request, qido.STUDY, lambda q: qido.studies_search(q, url_for=url_for(request)))


@dicomweb_endpoint(roles=CAN_VIEW_STUDIES)
def series_search(request: HttpRequest, study: str | None = None) -> HttpResponse:
    return _search(
        request,
        qido.SERIES,
        lambda q: qido.series_search(q, url_for=url_for(request), study_uid=study),
        study=study or "",
    )


@dicomweb_endpoint(roles=CAN_VIEW_STUDIES)
def instances_search(
    request: HttpRequest, study: str | None = None, series: str | None = None
) -> HttpResponse:
    return _search(
        request,
        qido.INSTANCE,
        lambda q: qido.instances_search(q, url_for=url_for(request), study_uid=study, series_uid=series),
        study=study or "",
    )


# -- WADO-RS ------------------------------------------------------------------------------------


def _instances(
    study: str, series: str | None = None, instance: str | None = None, *, metadata: bool = False
) -> list[Instance]:
    """The stored DICOM instances of a study, series or one instance; 404 when there are none."""
    instances = Instance.objects.filter(
        content_type=Instance.DICOM, series__study__study_uid=study
    ).select_related("series__study__patient")
    if metadata:
        instances = instances.select_related("dicom_metadata")
    if series is not None:
        instances = instances.filter(series__series_uid=series)
    if instance is not None:
        instances = instances.filter(sop_instance_uid=instance)
    found = list(instances.order_by("series__series_number", "series_id", "instance_number", "id"))
    if not found:
        raise Http404
    return found


def instances_audit(
    request: HttpRequest, instances: list[Instance], resource: str, *, kind: str = VIEW, **detail
) -> None:
    """Once per viewing session (``imaging.viewing``), naming the series; the first request's
    resource and instances go in the event."""
    viewing_record(
        request=request,
        study=instances[0].series.study,
        series_uids=[i.series.series_uid for i in instances],
        resource=resource,
        kind=kind,
        detail={
            "service": "WADO-RS",
            "instances": len(instances),
            "sop_instance_uids": [i.sop_instance_uid for i in instances[:100]],
            **detail,
        },
    )


async def _multipart(instances: list[Instance], syntaxes: list[str], boundary: str) -> AsyncIterator[bytes]:
    # One instance in memory at a time, however large the study.
    for instance in instances:
        data, syntax = await sync_to_async(instance_dicom)(instance, syntaxes)
        yield part_bytes(data, f"application/dicom; transfer-syntax={syntax}", boundary)
    yield closing_bytes(boundary)


def _retrieve(request: HttpRequest, instances: list[Instance], resource: str) -> HttpResponse:
    syntaxes = accepted_transfer_syntaxes(request.headers.get("Accept"))
    if not syntaxes:
        raise ApiError(406, 'Instances are sent as multipart/related; type="application/dicom".')
    if syntaxes[0] != ANY:
        try:  # refuse before the first byte is sent, not halfway through a study
            for instance in instances:
                transfer_syntax_choose(instance_header(instance), syntaxes)
        except NotAcceptable as exc:
            raise ApiError(406, str(exc)) from None
    instances_audit(request, instances, resource, kind=RETRIEVE)
    boundary = new_boundary()
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    if len(instances) == 1:
        data, syntax = instance_dicom(instances[0], syntaxes)
        body = part_bytes(data, f"application/dicom; transfer-syntax={syntax}", boundary)
        return HttpResponse(body + closing_bytes(boundary), content_type=content_type)
    return StreamingHttpResponse(_multipart(instances, syntaxes, boundary), content_type=content_type)


@dicomweb_endpoint(roles=CAN_RETRIEVE_INSTANCES)
def study_retrieve(request: HttpRequest, study: str) -> HttpResponse:
    return _retrieve(request, _instances(study), "study retrieved")


@dicomweb_endpoint(roles=CAN_RETRIEVE_INSTANCES)
def series_retrieve(request: HttpRequest, study: str, series: str) -> HttpResponse:
    return _retrieve(request, _instances(study, series), "series retrieved")


@dicomweb_endpoint(roles=CAN_RETRIEVE_INSTANCES)
def instance_retrieve(request: HttpRequest, study: str, series: str, instance: str) -> HttpResponse:
    return _retrieve(request, _instances(study, series, instance), "instance retrieved")


def _instance_url(request: HttpRequest, instance: Instance, suffix: str) -> str:
    path = reverse(
        "dicomweb-instance",
        args=[instance.series.study.study_uid, instance.series.series_uid, instance.sop_instance_uid],
    )
    return request.build_absolute_uri(path + suffix)


@dicomweb_endpoint(roles=CAN_VIEW_STUDIES)
def metadata(
    request: HttpRequest, study: str, series: str | None = None, instance: str | None = None
) -> HttpResponse:
    """The instances' headers as DICOM JSON; Pixel Data by reference (BulkDataURI)."""
    _wants_json(request)
    instances = _instances(study, series, instance, metadata=True)
    rows = instances_metadata(instances)
    instances_audit(request, instances, "metadata read")
    body = metadata_body(rows, pixel_data_url=lambda one: _instance_url(request, one, "/pixeldata"))
    return HttpResponse(body, content_type=DICOM_JSON)


def _private(response: HttpResponse) -> HttpResponse:
    # Patient images stay out of shared caches, and are fetched again (and so audited, once per
    # viewing session) rather than read from the browser's cache by another login.
    response["Cache-Control"] = "private, no-cache"
    return response


def _pixel_response(request: HttpRequest, found: Instance, numbers: list[int], resource: str) -> HttpResponse:
    for number in numbers:
        if not 1 <= number <= found.number_of_frames:
            raise ApiError(
                404, f"The instance has {found.number_of_frames} frame(s); there is no frame {number}."
            )
    if found.rows is None:
        raise ApiError(404, "The instance has no pixel data.")
    accepted = frames_accepted(request.headers.get("Accept"))
    row = instance_metadata(found)
    try:
        if row.pixel_offset is not None:
            # Uncompressed in the file (most CT and MR): each frame is a seek and a read away.
            choice = frames_choose(row.transfer_syntax, accepted)
            frames = frames_read(row, numbers)
        else:
            ds = instance_dataset(found)
            choice = frames_choose(stored_transfer_syntax(ds), accepted)
            frames = frames_of(ds, numbers, choice)
    except FramesNotAcceptable as exc:
        raise ApiError(406, str(exc)) from None
    instances_audit(request, [found], resource, frames=numbers[:100])
    boundary = new_boundary()
    body = b"".join(part_bytes(frame, choice.part_type, boundary) for frame in frames) + closing_bytes(
        boundary
    )
    content_type = f'multipart/related; type="{choice.media_type}"; boundary={boundary}'
    return _private(HttpResponse(body, content_type=content_type))


@dicomweb_endpoint(roles=CAN_VIEW_STUDIES)
def instance_frames(
    request: HttpRequest, study: str, series: str, instance: str, frames: str
) -> HttpResponse:
    """WADO-RS frames: ``multipart/related``, one part per frame (see ``dicomweb_frames``)."""
    try:
        numbers = frame_numbers_parse(frames)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    [found] = _instances(study, series, instance, metadata=True)
    return _pixel_response(request, found, numbers, "frames read")


@dicomweb_endpoint(roles=CAN_VIEW_STUDIES)
def instance_pixel_data(request: HttpRequest, study: str, series: str, instance: str) -> HttpResponse:
    """WADO-RS pixel data (the BulkDataURI of the metadata's Pixel Data): every frame, a part each."""
    [found] = _instances(study, series, instance, metadata=True)
    return _pixel_response(request, found, list(range(1, found.number_of_frames + 1)), "pixel data read")


def _rendered_type(request: HttpRequest) -> str:
    # PS3.18 8.3.3.1: an ``accept`` query parameter stands for the Accept header (an <img> cannot set it).
    try:
        return rendered_media_type(request.GET.get("accept") or request.headers.get("Accept"))
    except NotAcceptable as exc:
        raise ApiError(406, str(exc)) from None


@dicomweb_endpoint(roles=CAN_VIEW_STUDIES)
def instance_render(
    request: HttpRequest, study: str, series: str, instance: str, frame: int = 1
) -> HttpResponse:
    [found] = _instances(study, series, instance)
    if not 1 <= frame <= found.number_of_frames:
        raise ApiError(404, f"The instance has {found.number_of_frames} frame(s); there is no frame {frame}.")
    media = _rendered_type(request)
    instances_audit(request, [found], "rendered image viewed", frame=frame)
    return _private(HttpResponse(instance_rendered(found, media=media, frame=frame - 1), content_type=media))


def _thumbnail_size(request: HttpRequest) -> int:
    """``viewport=width,height`` (PS3.18 8.3.5.1.3): the thumbnail fits in it; 128 by default."""
    raw = request.GET.get("viewport")
    if not raw:
        return THUMBNAIL_SIZE
    try:
        width, _, height = raw.partition(",")
        size = max(int(width), int(height or width))
    except ValueError:
        raise ApiError(400, f"viewport must be width,height in pixels, not {raw[:40]!r}") from None
    return min(max(size, THUMBNAIL_SIZES[0]), THUMBNAIL_SIZES[-1])


def _thumbnail(request: HttpRequest, instances: list[Instance], *, frame: int | None = None) -> HttpResponse:
    """A small rendered image standing for ``instances``: the middle image of the first series
    that has images (the middle frame of a multi-frame instance)."""
    images = [i for i in instances if i.rows is not None]
    if not images:
        raise ApiError(404, "There is no image to make a thumbnail of.")
    first_series = images[0].series_id
    series_images = [i for i in images if i.series_id == first_series]
    chosen = series_images[len(series_images) // 2]
    if frame is None:
        frame = chosen.number_of_frames // 2 + 1
    if not 1 <= frame <= chosen.number_of_frames:
        raise ApiError(
            404, f"The instance has {chosen.number_of_frames} frame(s); there is no frame {frame}."
        )
    media = _rendered_type(request)
    size = _thumbnail_size(request)
    instances_audit(request, [chosen], "thumbnail viewed", frame=frame)
    image = instance_rendered(chosen, media=media, frame=frame - 1, size=size)
    return _private(HttpResponse(image, content_type=media))


@dicomweb_endpoint(roles=CAN_VIEW_STUDIES)
def thumbnail(
    request: HttpRequest,
    study: str,
    series: str | None = None,
    instance: str | None = None,
    frame: int | None = None,
) -> HttpResponse:
    """WADO-RS thumbnail (PS3.18 10.4.1.1.5) of a study, series, instance or frame."""
    return _thumbnail(request, _instances(study, series, instance), frame=frame)
