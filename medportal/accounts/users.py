"""People's accounts, managed by admins on the Users page: create with roles and an initial
password, change details and roles, deactivate and reactivate, reset the password.

Every change is audited as a Security Alert (DCM 110113) with its event type code: Security
Roles Changed (110136) or User Security Attributes Changed (110137), naming the account and
what changed; never a password. Two guards keep admins from locking everyone out or taking
over a stronger account: no admin removes their own admin role or deactivates themselves,
and only a superuser changes a superuser (who also holds the Django admin).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest

from medportal.access.roles import Role
from medportal.accounts.services import is_service_account
from medportal.audit.models import Action, EventType
from medportal.audit.services import audit_record

# The roles an admin gives people here (service accounts come from manage.py medportal_service_token).
PEOPLE_ROLES = (Role.TECHNOLOGIST, Role.RADIOLOGIST, Role.AUDITOR, Role.ADMIN)
ROLES_CHANGED = {"event_type_code": "110136", "event_type_meaning": "Security Roles Changed"}
USER_ATTRIBUTES_CHANGED = {
    "event_type_code": "110137",
    "event_type_meaning": "User Security Attributes Changed",
}


class UserError(Exception):
    """The change is refused; the message says why."""


def user_roles(user) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def _audit(description: str, *, user, by, request: HttpRequest | None, action: Action, detail: dict) -> None:
    audit_record(
        event_type=EventType.SECURITY_ALERT,
        action=action,
        description=description,
        user=by,
        request=request,
        object_type="user",
        object_id=user.pk,
        detail={"account": user.get_username(), **detail},
    )


def _may_change(*, user, by) -> None:
    if user.is_superuser and not by.is_superuser:
        raise UserError(
            f"{user.get_username()} is a superuser: only a superuser may change that account "
            "(in the Django admin)."
        )


def _set_roles(user, roles: list[str]) -> None:
    kept = user.groups.exclude(
        name__in=[role.value for role in PEOPLE_ROLES]
    )  # e.g. a group of the admin site
    wanted = [Group.objects.get_or_create(name=Role(name).value)[0] for name in roles]
    user.groups.set([*kept, *wanted])


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    roles: list[str],
    by,
    request: HttpRequest | None = None,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
):
    """A person's account with these roles and an initial password (already validated by the form)."""
    if get_user_model().objects.filter(username__iexact=username).exists():
        raise UserError(f"A user named {username!r} already exists.")
    user = get_user_model().objects.create_user(
        username=username, password=password, first_name=first_name, last_name=last_name, email=email
    )
    _set_roles(user, roles)
    _audit(
        "User created",
        user=user,
        by=by,
        request=request,
        action=Action.CREATE,
        detail={**ROLES_CHANGED, "roles": sorted(roles)},
    )
    return user


@transaction.atomic
def user_update(
    *,
    user,
    roles: list[str],
    by,
    request: HttpRequest | None = None,
    first_name: str,
    last_name: str,
    email: str,
):
    """New name, e-mail and roles. Returns the user; audited only when something changed."""
    _may_change(user=user, by=by)
    if is_service_account(user):
        raise UserError(f"{user.get_username()} is a service account: its one role is service.")
    before_roles = user_roles(user)
    after_roles = sorted({*[r for r in before_roles if r not in PEOPLE_ROLES], *roles})
    if user.pk == by.pk and Role.ADMIN.value in before_roles and Role.ADMIN.value not in after_roles:
        raise UserError("You cannot remove your own admin role; another admin can.")
    details = {"first_name": first_name, "last_name": last_name, "email": email}
    changed = sorted(name for name, value in details.items() if getattr(user, name) != value)
    for name in changed:
        setattr(user, name, details[name])
    if changed:
        user.save(update_fields=list(changed))
        _audit(
            "User details changed",
            user=user,
            by=by,
            request=request,
            action=Action.UPDATE,
            detail={**USER_ATTRIBUTES_CHANGED, "changed": changed},
        )
    if after_roles != before_roles:
        _set_roles(user, roles)
        _audit(
            "User roles changed",
            user=user,
            by=by,
            request=request,
            action=Action.UPDATE,
            detail={**ROLES_CHANGED, "before": before_roles, "after": after_roles},
        )
    return user


@transaction.atomic
def user_set_active(*, user, active: bool, by, request: HttpRequest | None = None):
    """Deactivated, an account logs in nowhere: its sessions, tokens and websockets end."""
    _may_change(user=user, by=by)
    if user.pk == by.pk and not active:
        raise UserError("You cannot deactivate your own account; another admin can.")
    if user.is_active == active:
        return user
    user.is_active = active
    user.save(update_fields=["is_active"])
    _audit(
        "User reactivated" if active else "User deactivated",
        user=user,
        by=by,
        request=request,
        action=Action.UPDATE,
        detail={**USER_ATTRIBUTES_CHANGED, "active": active},
    )
    return user


@transaction.atomic
def user_password_reset(*, user, password: str, by, request: HttpRequest | None = None):
    """A new password (validated by the form); the account's open sessions end with the old one."""
    _may_change(user=user, by=by)
    if is_service_account(user):
        raise UserError(f"{user.get_username()} is a service account: it uses tokens, never a password.")
    user.set_password(password)
    user.save(update_fields=["password"])
    _audit(
        "User password reset",
        user=user,
        by=by,
        request=request,
        action=Action.UPDATE,
        detail={**USER_ATTRIBUTES_CHANGED, "password_reset": True},
    )
    return user
