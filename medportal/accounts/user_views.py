"""The Users page, for admins: list people's accounts, create one, change details and roles,
deactivate or reactivate, reset a password. Changes are audited by ``accounts.users``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from medportal.access.guards import role_required
from medportal.access.roles import CAN_MANAGE_USERS
from medportal.accounts.services import is_service_account
from medportal.accounts.user_forms import PasswordResetForm, UserCreateForm, UserEditForm
from medportal.accounts.users import (
    UserError,
    user_create,
    user_password_reset,
    user_roles,
    user_set_active,
    user_update,
)


def _enrolled_ids() -> set[int]:
    return set(TOTPDevice.objects.filter(confirmed=True).values_list("user_id", flat=True))


@role_required(*CAN_MANAGE_USERS)
def user_list(request: HttpRequest) -> HttpResponse:
    users = get_user_model().objects.order_by("username").prefetch_related("groups")
    enrolled = _enrolled_ids()
    rows = [
        {
            "user": user,
            "roles": sorted(group.name for group in user.groups.all()),
            "two_factor": user.pk in enrolled,
        }
        for user in users
    ]
    return render(request, "accounts/user_list.html", {"rows": rows})


@role_required(*CAN_MANAGE_USERS)
@require_http_methods(["GET", "POST"])
def user_new(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            user = user_create(
                username=data["username"],
                password=data["password1"],
                roles=data["roles"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                email=data["email"],
                by=request.user,
                request=request,
            )
        except UserError as exc:
            form.add_error("username", str(exc))
        else:
            messages.success(
                request, f"User {user.get_username()} created. Give them the password in person."
            )
            return redirect("user-list")
    return render(request, "accounts/user_new.html", {"form": form}, status=400 if form.is_bound else 200)


def _edit_page(request: HttpRequest, user, *, edit_form=None, password_form=None, status: int = 200):
    context = {
        "account": user,
        "roles": user_roles(user),
        "service_account": is_service_account(user),
        "two_factor": user.pk in _enrolled_ids(),
        "edit_form": edit_form or UserEditForm.for_user(user),
        "password_form": password_form or PasswordResetForm(user=user),
    }
    return render(request, "accounts/user_edit.html", context, status=status)


@role_required(*CAN_MANAGE_USERS)
@require_http_methods(["GET", "POST"])
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    user = get_object_or_404(get_user_model(), pk=user_id)
    if request.method == "GET":
        return _edit_page(request, user)
    form = UserEditForm.for_user(user, request.POST)
    if form.is_valid():
        try:
            user_update(user=user, by=request.user, request=request, **form.cleaned_data)
        except UserError as exc:
            messages.error(request, str(exc))
            return _edit_page(request, user, edit_form=form, status=409)
        messages.success(request, f"User {user.get_username()} saved.")
        return redirect("user-edit", user_id=user.pk)
    return _edit_page(request, user, edit_form=form, status=400)


@role_required(*CAN_MANAGE_USERS)
@require_POST
def user_active(request: HttpRequest, user_id: int) -> HttpResponse:
    user = get_object_or_404(get_user_model(), pk=user_id)
    choice = request.POST.get("active")
    if choice not in ("true", "false"):
        messages.error(request, "Say whether the account is to be active.")
        return _edit_page(request, user, status=400)
    try:
        user = user_set_active(user=user, active=choice == "true", by=request.user, request=request)
    except UserError as exc:
        messages.error(request, str(exc))
        return _edit_page(request, user, status=409)
    state = "active" if user.is_active else "deactivated: it logs in nowhere, its tokens are refused"
    messages.success(request, f"User {user.get_username()} is {state}.")
    return redirect("user-edit", user_id=user.pk)


@role_required(*CAN_MANAGE_USERS)
@require_POST
def user_password(request: HttpRequest, user_id: int) -> HttpResponse:
    user = get_object_or_404(get_user_model(), pk=user_id)
    form = PasswordResetForm(request.POST, user=user)
    if form.is_valid():
        try:
            user_password_reset(
                user=user, password=form.cleaned_data["password1"], by=request.user, request=request
            )
        except UserError as exc:
            messages.error(request, str(exc))
            return _edit_page(request, user, status=409)
        if user.pk == request.user.pk:
            update_session_auth_hash(request, user)  # the admin's own session goes on
        messages.success(
            request, f"The password of {user.get_username()} is reset; their open sessions have ended."
        )
        return redirect("user-edit", user_id=user.pk)
    return _edit_page(request, user, password_form=form, status=400)
