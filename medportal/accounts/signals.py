from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from medportal.audit.models import Action, EventType, Outcome
from medportal.audit.services import audit_record


@receiver(user_logged_in)
def _audit_login(sender, request, user, **kwargs):
    audit_record(
        event_type=EventType.USER_AUTHENTICATION,
        action=Action.EXECUTE,
        description="Login",
        request=request,
        user=user,
    )


@receiver(user_logged_out)
def _audit_logout(sender, request, user, **kwargs):
    audit_record(
        event_type=EventType.USER_AUTHENTICATION,
        action=Action.EXECUTE,
        description="Logout",
        request=request,
        user=user,
    )


@receiver(user_login_failed)
def _audit_login_failure(sender, credentials, request=None, **kwargs):
    audit_record(
        event_type=EventType.USER_AUTHENTICATION,
        action=Action.EXECUTE,
        description="Login failed",
        outcome=Outcome.MINOR_FAILURE,
        request=request,
        username=str(credentials.get("username", "")),
    )
