from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from medportal.accounts.sessions import session_start
from medportal.audit.models import Action, EventType, Outcome
from medportal.audit.services import audit_record


@receiver(user_logged_in)
def _audit_login(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        session_start(request.session)
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


@receiver(user_locked_out)
def _audit_lockout(sender, request=None, username=None, ip_address=None, **kwargs):
    audit_record(
        event_type=EventType.SECURITY_ALERT,
        action=Action.EXECUTE,
        description="Login locked out after repeated failures",
        outcome=Outcome.SERIOUS_FAILURE,
        request=request,
        username=str(username or ""),
        network_address=ip_address,
    )
