"""DICOMweb (PS3.18) views: QIDO-RS search and WADO-RS retrieve, token-authenticated and audited.

STOW-RS lives in ``intake.stow``: every way a study arrives is intake's. Views here
parse the request, call the query and retrieve functions,
audit, and shape the response.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from medportal.access.roles import CAN_RETRIEVE_INSTANCES, CAN_VIEW_STUDIES
from medportal.accounts.api_access import ApiError, api_endpoint
from medportal.audit.models import Action, EventType
from medportal.audit.services import audit_record
from medportal.imaging import dicomweb_query as qido
from medportal.imaging.auditing import study_audit
from medportal.imaging.dicomweb_json import metadata_json
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
from medportal.imaging.models import Instance, Study
from medportal.imaging.multipart import closing_bytes, new_boundary, part_bytes

DICOM_JSON = "application/dicom+json"


def by_method(**views: Callable) -> Callable:
    """One URL, a view per HTTP method (``/studies`` is QIDO-RS for GET and STOW-RS for POST)."""

    @csrf_exempt  # the views are token-authenticated; no cookies are used
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


def _search(request: HttpRequest, level: str, run: Callable[[qido.Query], tuple[list[dict], bool]], **scope):
    _wants_json(request)
    try:
        query = qido.query_parse(request.GET, level=level)
    except qido.QueryError as exc:
        raise ApiError(400, str(exc)) from None
    results, more = run(query)
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


@api_endpoint(methods=("GET",), roles=CAN_VIEW_STUDIES)
def studies_search(request: HttpRequest) -> HttpResponse:
    return _search(request, qido.STUDY, lambda q: qido.studies_search(q, url_for=url_for(request)))


@api_endpoint(methods=("GET",), roles=CAN_VIEW_STUDIES)
def series_search(request: HttpRequest, study: str | None = None) -> HttpResponse:
    return _search(
        request,
        qido.SERIES,
        lambda q: qido.series_search(q, url_for=url_for(request), study_uid=study),
        study=study or "",
    )


@api_endpoint(methods=("GET",), roles=CAN_VIEW_STUDIES)
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


def _instances(study: str, series: str | None = None, instance: str | None = None) -> list[Instance]:
    """The stored DICOM instances of a study, series or one instance; 404 when there are none."""
    instances = Instance.objects.filter(
        content_type=Instance.DICOM, series__study__study_uid=study
    ).select_related("series__study__patient")
    if series is not None:
        instances = instances.filter(series__series_uid=series)
    if instance is not None:
        instances = instances.filter(sop_instance_uid=instance)
    found = list(instances.order_by("series__series_number", "series_id", "instance_number", "id"))
    if not found:
        raise Http404
    return found


def instances_audit(request: HttpRequest, instances: list[Instance], resource: str, **detail) -> None:
    """A WADO-RS retrieve of instances of one study."""
    study: Study = instances[0].series.study
    single = len(instances) == 1
    study_audit(
        study,
        f"DICOMweb {resource} (WADO-RS)",
        event_type=EventType.INSTANCES_ACCESSED,
        action=Action.READ,
        request=request,
        object_type="instance" if single else "study",
        object_id=instances[0].pk if single else study.pk,
        detail={
            "service": "WADO-RS",
            "resource": resource,
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
    instances_audit(request, instances, resource)
    boundary = new_boundary()
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    if len(instances) == 1:
        data, syntax = instance_dicom(instances[0], syntaxes)
        body = part_bytes(data, f"application/dicom; transfer-syntax={syntax}", boundary)
        return HttpResponse(body + closing_bytes(boundary), content_type=content_type)
    return StreamingHttpResponse(_multipart(instances, syntaxes, boundary), content_type=content_type)


@api_endpoint(methods=("GET",), roles=CAN_RETRIEVE_INSTANCES)
def study_retrieve(request: HttpRequest, study: str) -> HttpResponse:
    return _retrieve(request, _instances(study), "study retrieved")


@api_endpoint(methods=("GET",), roles=CAN_RETRIEVE_INSTANCES)
def series_retrieve(request: HttpRequest, study: str, series: str) -> HttpResponse:
    return _retrieve(request, _instances(study, series), "series retrieved")


@api_endpoint(methods=("GET",), roles=CAN_RETRIEVE_INSTANCES)
def instance_retrieve(request: HttpRequest, study: str, series: str, instance: str) -> HttpResponse:
    return _retrieve(request, _instances(study, series, instance), "instance retrieved")


@api_endpoint(methods=("GET",), roles=CAN_VIEW_STUDIES)
def metadata(
    request: HttpRequest, study: str, series: str | None = None, instance: str | None = None
) -> HttpResponse:
    _wants_json(request)
    instances = _instances(study, series, instance)
    payload = [metadata_json(instance_header(one)) for one in instances]
    instances_audit(request, instances, "metadata read")
    return _dicom_json(payload)


@api_endpoint(methods=("GET",), roles=CAN_VIEW_STUDIES)
def instance_render(
    request: HttpRequest, study: str, series: str, instance: str, frame: int = 1
) -> HttpResponse:
    [found] = _instances(study, series, instance)
    if not 1 <= frame <= found.number_of_frames:
        raise ApiError(404, f"The instance has {found.number_of_frames} frame(s); there is no frame {frame}.")
    try:
        media = rendered_media_type(request.headers.get("Accept"))
    except NotAcceptable as exc:
        raise ApiError(406, str(exc)) from None
    instances_audit(request, [found], "rendered image viewed", frame=frame)
    response = HttpResponse(instance_rendered(found, media=media, frame=frame - 1), content_type=media)
    # Patient images stay out of shared caches.
    # Revalidate every time (a cheap 304 by ETag), so that every look at an image is audited.
    response["Cache-Control"] = "private, no-cache"
    return response
