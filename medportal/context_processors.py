from django.conf import settings

from medportal.accounts.roles import (
    CAN_EDIT_REPORTS,
    CAN_EXPORT,
    CAN_OPERATE,
    CAN_READ_AUDIT,
    CAN_REQUEST_DRAFT,
    CAN_SIGN_REPORTS,
    CAN_UPLOAD,
    CAN_VIEW_STUDIES,
    has_role,
)


def medportal(request):
    user = getattr(request, "user", None)
    return {
        "test_model_in_use": settings.MEDPORTAL_MODEL == "tiny",
        "model_name": settings.MEDPORTAL_MODEL,
        "can": {
            "upload": has_role(user, *CAN_UPLOAD),
            "view_studies": has_role(user, *CAN_VIEW_STUDIES),
            "request_draft": has_role(user, *CAN_REQUEST_DRAFT),
            "edit": has_role(user, *CAN_EDIT_REPORTS),
            "sign": has_role(user, *CAN_SIGN_REPORTS),
            "read_audit": has_role(user, *CAN_READ_AUDIT),
            "export": has_role(user, *CAN_EXPORT),
            "operate": has_role(user, *CAN_OPERATE),
        },
    }
