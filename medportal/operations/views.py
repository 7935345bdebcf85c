from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from medportal.access.guards import role_required
from medportal.access.roles import CAN_OPERATE
from medportal.audit.models import Action, EventType
from medportal.audit.services import audit_record
from medportal.operations.selectors import fleet_status


@role_required(*CAN_OPERATE)
def workers_status(request: HttpRequest) -> HttpResponse:
    """Live inference workers and the draft queues; the page re-reads its table every 5 s."""
    status = fleet_status()
    if request.htmx:
        # The poll shows no patient data (counts and ages only); auditing it would add an
        # event every 5 s for as long as the page is open. Opening the page is audited.
        return render(request, "operations/workers.html#status", {"status": status})
    audit_record(
        event_type=EventType.APPLICATION_ACTIVITY,
        action=Action.READ,
        description="Inference workers status viewed",
        request=request,
        detail={"workers": len(status.workers), "warnings": len(status.warnings)},
    )
    return render(request, "operations/workers.html", {"status": status})
