from django.conf import settings

from medportal.access.homes import home_url_name
from medportal.access.roles import (
    CAN_CANCEL_REPORTS,
    CAN_EDIT_REPORTS,
    CAN_EXPORT,
    CAN_MANAGE_INTERFACES,
    CAN_MANAGE_TEMPLATES,
    CAN_MANAGE_USERS,
    CAN_OPERATE,
    CAN_READ_AUDIT,
    CAN_REQUEST_DRAFT,
    CAN_SIGN_REPORTS,
    CAN_UPLOAD,
    CAN_VIEW_CRITICAL,
    CAN_VIEW_QUALITY,
    CAN_VIEW_STUDIES,
    has_role,
)
from medportal.exports.pacs import pacs_destination


def medportal(request):
    user = getattr(request, "user", None)
    return {
        "test_model_in_use": settings.MEDPORTAL_MODEL == "tiny",
        "model_name": settings.MEDPORTAL_MODEL,
        "home_url_name": home_url_name(user) if user is not None else None,
        "can": {
            "upload": has_role(user, *CAN_UPLOAD),
            "view_studies": has_role(user, *CAN_VIEW_STUDIES),
            "request_draft": has_role(user, *CAN_REQUEST_DRAFT),
            "edit": has_role(user, *CAN_EDIT_REPORTS),
            "sign": has_role(user, *CAN_SIGN_REPORTS),
            "cancel": has_role(user, *CAN_CANCEL_REPORTS),
            "read_audit": has_role(user, *CAN_READ_AUDIT),
            "export": has_role(user, *CAN_EXPORT),
            "manage_templates": has_role(user, *CAN_MANAGE_TEMPLATES),
            "view_quality": has_role(user, *CAN_VIEW_QUALITY),
            "manage_interfaces": has_role(user, *CAN_MANAGE_INTERFACES),
            "operate": has_role(user, *CAN_OPERATE),
            "manage_users": has_role(user, *CAN_MANAGE_USERS),
            "view_critical": has_role(user, *CAN_VIEW_CRITICAL),
        },
        # "Send to PACS" is offered only where a PACS is configured.
        "pacs_destination": str(pacs_destination() or ""),
    }
