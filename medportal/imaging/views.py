from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404

from medportal.accounts.access import role_required
from medportal.accounts.roles import CAN_VIEW_STUDIES
from medportal.audit.models import Action, EventType
from medportal.audit.services import audit_record
from medportal.imaging.models import Instance
from medportal.imaging.services import instance_render_png

# Bump when the rendering changes, so browsers drop images rendered the old way.
RENDER_VERSION = 2


@role_required(*CAN_VIEW_STUDIES)
def instance_image(request: HttpRequest, instance_id: int) -> HttpResponse:
    instance = get_object_or_404(Instance.objects.select_related("series__study__patient"), pk=instance_id)
    try:
        frame = int(request.GET.get("frame", 0))
    except ValueError:
        raise Http404("no such frame") from None
    if not 0 <= frame < instance.number_of_frames:
        raise Http404("no such frame")
    study = instance.series.study
    audit_record(
        event_type=EventType.INSTANCES_ACCESSED,
        action=Action.READ,
        description="Image viewed",
        request=request,
        patient_id=study.patient.patient_id,
        study_uid=study.study_uid,
        accession_number=study.accession_number,
        object_type="instance",
        object_id=instance.pk,
        detail={"frame": frame},
    )
    etag = f'"{instance.sha256[:32]}-{frame}-r{RENDER_VERSION}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(instance_render_png(instance=instance, frame=frame), content_type="image/png")
    response["ETag"] = etag
    # Patient images stay out of shared caches.
    response["Cache-Control"] = "private, max-age=3600"
    return response
