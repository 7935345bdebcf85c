from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from medportal.accounts.access import role_required
from medportal.accounts.roles import CAN_READ_AUDIT
from medportal.audit.models import Action, AuditEvent, EventType
from medportal.audit.services import audit_record


@role_required(*CAN_READ_AUDIT)
def audit_list(request: HttpRequest) -> HttpResponse:
    events = AuditEvent.objects.select_related("user").order_by("-id")
    filters = {key: request.GET.get(key, "").strip() for key in ("username", "patient_id", "study_uid")}
    for key, value in filters.items():
        if value:
            events = events.filter(**{key: value})
    audit_record(
        event_type=EventType.AUDIT_LOG_USED,
        action=Action.READ,
        description="Audit trail viewed",
        request=request,
        detail={k: v for k, v in filters.items() if v},
    )
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    return render(request, "audit/audit_list.html", {"page": page, "filters": filters})
