"""Changes to accounts that are more than a form: service accounts and their tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction

from medportal.access.roles import Role
from medportal.accounts.models import ApiToken
from medportal.audit.models import Action, EventType
from medportal.audit.services import audit_record


class ServiceAccountError(Exception):
    """The service account cannot be created or given a token; the message says why."""


def is_service_account(user) -> bool:
    """Only the service role, no password, no staff or superuser flag: a machine, never a person."""
    roles = set(user.groups.values_list("name", flat=True))
    return (
        roles == {Role.SERVICE.value}
        and not user.has_usable_password()
        and not user.is_staff
        and not user.is_superuser
    )


@transaction.atomic
def service_token_issue(*, name: str, replace: bool = False) -> tuple[ApiToken, str]:
    """A token for the service account ``name``, created when it does not exist yet.

    The account has the service role only (WADO-RS retrieve of instances) and no password.
    ``replace`` revokes the account's earlier tokens (rotation). Returns the token and its
    key; the key is stored only as a hash, so this is the one time it can be read.
    """
    try:
        UnicodeUsernameValidator()(name)
    except ValidationError as exc:
        raise ServiceAccountError(f"{name!r} is not a valid account name: {' '.join(exc.messages)}") from None
    user = get_user_model().objects.select_for_update().filter(username=name).first()
    created = user is None
    if created:
        user = get_user_model()(username=name)
        user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get_or_create(name=Role.SERVICE.value)[0])
    elif not is_service_account(user):
        raise ServiceAccountError(
            f"A user named {name!r} already exists and is not a service account; choose another name."
        )
    elif not user.is_active:
        raise ServiceAccountError(
            f"The service account {name!r} is deactivated; reactivate it on the Users page first."
        )
    revoked = user.api_tokens.all().delete()[0] if replace else 0
    token, key = ApiToken.issue(user=user, name=f"service token {name}")
    audit_record(
        event_type=EventType.SECURITY_ALERT,
        action=Action.CREATE,
        description="Service account token issued",
        username="manage.py",
        object_type="user",
        object_id=user.pk,
        detail={"account": name, "account_created": created, "token_id": token.pk, "tokens_revoked": revoked},
    )
    return token, key
