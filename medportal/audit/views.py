from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from medportal.access.guards import role_required
from medportal.access.roles import CAN_READ_AUDIT
from medportal.audit.forms import AuditFilterForm
from medportal.audit.models import Action, EventType
from medportal.audit.selectors import audit_events, patient_accessors
from medportal.audit.services import audit_record
from medportal.csv_export import csv_line

CSV_COLUMNS = [
    "id", "occurred_at", "event_type", "action", "outcome", "description", "username", "role",
    "network_address", "patient_id", "study_uid", "accession_number", "object_type", "object_id", "hash",
]  # fmt: skip


@role_required(*CAN_READ_AUDIT)
def audit_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    filters = form.filters()
    audit_record(
        event_type=EventType.AUDIT_LOG_USED,
        action=Action.READ,
        description="Audit trail viewed",
        request=request,
        patient_id=filters.patient_id,
        detail=filters.as_detail(),
    )
    page = Paginator(audit_events(filters), 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "accessors": patient_accessors(filters.patient_id) if filters.patient_id else None,
        "patient_id": filters.patient_id,
    }
    return render(request, "audit/audit_list.html", context)


@role_required(*CAN_READ_AUDIT)
def audit_export_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered trail as CSV; the export is itself recorded."""
    filters = AuditFilterForm(request.GET or None).filters()
    audit_record(
        event_type=EventType.EXPORT,
        action=Action.READ,
        description="Audit trail exported (CSV)",
        request=request,
        patient_id=filters.patient_id,
        detail=filters.as_detail(),
    )

    def rows():
        yield csv_line(CSV_COLUMNS)
        for event in audit_events(filters).values_list(*CSV_COLUMNS).iterator(chunk_size=2000):
            yield csv_line(event)

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="medportal-audit.csv"'
    return response
