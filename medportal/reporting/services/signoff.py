"""What a signature (a report's or an addendum's) asks of the signer before anything is written:
the password again, the TOTP code when enrolled, a lockout after repeated wrong passwords, and
the study's claim.

Lockout: a wrong password at sign-off counts as a failed login in django-axes, which is what
the login page uses: after MEDPORTAL_LOGIN_FAILURE_LIMIT failures (logins and sign-offs
together) from one address within MEDPORTAL_LOCKOUT_MINUTES, that username is locked out
there, for the login page and for sign-offs alike. A locked-out sign-off is refused before the
password is even checked.

Claims: a study claimed by one radiologist cannot be saved or signed by another; an admin
does not override it silently but reassigns the study (audited), after which the new
assignee saves and signs it.

Refusals are audited here, once; the exception is marked (``audited``) so that the page that
shows it does not record it again.
"""

from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings

from medportal.accounts.names import display_name
from medportal.accounts.second_factor import totp_device, totp_verify
from medportal.audit.models import Action, Outcome
from medportal.reporting.auditing import report_audit
from medportal.reporting.lifecycle import ReportError
from medportal.reporting.models import Report


class ReauthenticationFailed(ReportError):
    """The password (or code) given to confirm a signature was wrong, or the account is locked."""


class ClaimedByAnother(ReportError):
    """Another radiologist holds the study's claim."""


def refusal_mark(exc: ReportError) -> ReportError:
    exc.audited = True
    return exc


def refusal_audited(exc: Exception) -> bool:
    return bool(getattr(exc, "audited", False))


def refusal_audit(
    report: Report, exc: ReportError, *, what: str, user, request, detail: dict | None = None
) -> None:
    """Record a refused signature or save once (nothing when it already was)."""
    if refusal_audited(exc):
        return
    report_audit(
        report,
        f"{what} refused: {exc}"[:200],
        action=Action.UPDATE,
        request=request,
        user=user,
        outcome=Outcome.MINOR_FAILURE,
        detail={"reason": str(exc)[:300], **(detail or {})},
    )
    refusal_mark(exc)


def claim_check(report: Report, *, user, doing: str) -> None:
    """ClaimedByAnother unless the study is unclaimed or claimed by ``user``."""
    if report.assigned_to_id is None or report.assigned_to_id == user.pk:
        return
    holder = display_name(report.assigned_to)
    raise ClaimedByAnother(
        f"{holder} claimed this study; only they can {doing} it (an admin can reassign it to you)."
    )


def sign_refused_before_reading(*, report: Report, user, password: str, request) -> bool:
    """Whether a sign-off would be refused before its text matters (the account locked out, a
    wrong password, another's claim): then the proofread is not run and the sign-off itself
    refuses, once, with its reason. Records nothing."""
    credentials = {"username": user.get_username()}
    if request is not None and AxesProxyHandler.is_locked(request, credentials):
        return True
    if not user.is_active or not user.check_password(password):
        return True
    return report.assigned_to_id is not None and report.assigned_to_id != user.pk


def signer_reauthenticate(*, report: Report, user, password: str, otp_code: str, request, what: str) -> None:
    """The signer's password again, and their TOTP code when enrolled; ReauthenticationFailed
    (audited once) when wrong or locked out."""
    credentials = {"username": user.get_username()}
    if request is not None and AxesProxyHandler.is_locked(request, credentials):
        minutes = round(settings.AXES_COOLOFF_TIME * 60)
        exc = ReauthenticationFailed(
            f"Too many wrong passwords: your account is locked for {minutes} minutes; nothing was signed."
        )
        refusal_audit(report, exc, what=what, user=user, request=request, detail={"locked_out": True})
        raise exc
    if not user.is_active or not user.check_password(password):
        report_audit(
            report,
            f"{what} refused: wrong password",
            action=Action.UPDATE,
            request=request,
            user=user,
            outcome=Outcome.MINOR_FAILURE,
        )
        if request is not None:
            # Counted with failed logins (django-axes): enough of them lock the account.
            AxesProxyHandler.user_login_failed(sender=Report, credentials=credentials, request=request)
        raise refusal_mark(ReauthenticationFailed("The password is not correct; nothing was signed."))
    if totp_device(user) is not None and not totp_verify(
        user=user, code=otp_code, request=request, purpose="sign-off"
    ):
        # totp_verify recorded the refusal.
        raise refusal_mark(
            ReauthenticationFailed(
                "The code from your authenticator app is missing or wrong; nothing was signed."
            )
        )
