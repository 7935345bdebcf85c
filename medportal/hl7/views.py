"""The HL7 outbox page (admins): every message to the EHR, its state, and resending a failed one."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from medportal.access.guards import role_required
from medportal.access.roles import CAN_MANAGE_INTERFACES
from medportal.audit.models import Action, EventType
from medportal.audit.services import audit_record
from medportal.hl7.models import OutboundMessage
from medportal.hl7.selectors import FILTERS, outbox_messages
from medportal.hl7.services import OutboxError, hl7_configured, hl7_destination, message_resend


@role_required(*CAN_MANAGE_INTERFACES)
def outbox(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "")
    show = show if show in FILTERS else ""
    page = Paginator(outbox_messages(show=show), 50).get_page(request.GET.get("page"))
    audit_record(
        event_type=EventType.QUERY,
        action=Action.READ,
        description="HL7 outbox viewed",
        request=request,
        detail={"show": show, "page": page.number},
    )
    context = {
        "page": page,
        "show": show,
        "filters": [(name, label) for name, (label, _) in FILTERS.items()],
        "configured": hl7_configured(),
        "destination": hl7_destination(),
        "queue": settings.MEDPORTAL_INTERFACES_QUEUE,
        "max_attempts": settings.MEDPORTAL_HL7_MAX_ATTEMPTS,
    }
    return render(request, "hl7/outbox.html", context)


@role_required(*CAN_MANAGE_INTERFACES)
@require_POST
def outbox_resend(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(
        OutboundMessage.objects.select_related("report__study__patient"), pk=message_id
    )
    try:
        message_resend(message=message, user=request.user, request=request)
    except OutboxError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Message {message.pk} is queued to be sent again.")
    show = request.POST.get("show", "")
    return redirect(reverse("hl7-outbox") + (f"?show={show}" if show in FILTERS and show else ""))
