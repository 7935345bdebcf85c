"""Optional TOTP second factor (django-otp): enrolment, the login step, and sign-off checks.

A user who has confirmed a TOTP device must give a code after the password to use the
application, and with the password to sign a report.
"""

from __future__ import annotations

import base64

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from medportal.audit.models import Action, EventType, Outcome
from medportal.audit.services import audit_record


def totp_device(user) -> TOTPDevice | None:
    """The user's confirmed TOTP device, if enrolled."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def totp_enrolment_start(*, user) -> TOTPDevice:
    """A new unconfirmed device (replacing an earlier unconfirmed one) to show as a secret."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)


def totp_secret(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def totp_enrolment_confirm(*, user, code: str, request=None) -> bool:
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    ok = device is not None and device.verify_token(code.strip())
    if ok:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        if request is not None:
            otp_login(request, device)
    audit_record(
        event_type=EventType.SECURITY_ALERT if not ok else EventType.USER_AUTHENTICATION,
        action=Action.UPDATE,
        description="Second factor enrolled" if ok else "Second factor enrolment failed (wrong code)",
        outcome=Outcome.SUCCESS if ok else Outcome.MINOR_FAILURE,
        request=request,
        user=user,
    )
    return ok


def totp_verify(*, user, code: str, request=None, purpose: str) -> bool:
    """Check a code from the user's confirmed device; failures are audited."""
    device = totp_device(user)
    ok = device is not None and bool(code) and device.verify_token(code.strip())
    if ok and request is not None and purpose == "login":
        otp_login(request, device)
    audit_record(
        event_type=EventType.USER_AUTHENTICATION,
        action=Action.EXECUTE,
        description=f"Second factor {'accepted' if ok else 'refused'} ({purpose})",
        outcome=Outcome.SUCCESS if ok else Outcome.MINOR_FAILURE,
        request=request,
        user=user,
    )
    return ok


def second_factor_owed(user, session) -> bool:
    """Whether this session's user is enrolled but has not given a code in this session: the
    password step alone, which lets them reach nothing but the code step (pages and websockets).
    The same test as django-otp's middleware: the session names a confirmed device of the user."""
    if not getattr(user, "is_authenticated", False) or totp_device(user) is None:
        return False
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    return device is None or device.user_id != user.pk or not device.confirmed


# Paths a user who still owes the second factor may reach.
_OPEN_PATHS = ("/login/", "/logout/", "/static/")


class SecondFactorRequiredMiddleware:
    """After the password, a user with a TOTP device must give a code before anything else."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            not request.path.startswith(_OPEN_PATHS)
            and not request.path.startswith("/api/")  # token clients: the token is their credential
            and not request.path.startswith("/dicomweb/")
            and second_factor_owed(user, request.session)  # the websockets ask the same
        ):
            from django.shortcuts import redirect
            from django.urls import reverse
            from django.utils.http import urlencode

            return redirect(
                f"{reverse('login-second-factor')}?{urlencode({'next': request.get_full_path()})}"
            )
        return self.get_response(request)
