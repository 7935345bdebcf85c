"""The second-factor pages: the code step after login, and enrolment."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from medportal.accounts.second_factor import (
    totp_device,
    totp_enrolment_confirm,
    totp_enrolment_start,
    totp_secret,
    totp_verify,
)


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    return target if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}) else "/"


@login_required
def login_second_step(request: HttpRequest) -> HttpResponse:
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if totp_verify(user=request.user, code=form.cleaned_data["code"], request=request, purpose="login"):
            return redirect(_safe_next(request))
        form.add_error("code", "That code is not right (or has expired). Try the current one.")
    return render(
        request,
        "accounts/second_factor.html",
        {"form": form, "next": _safe_next(request)},
        status=400 if form.errors else 200,
    )


@login_required
def totp_enrol(request: HttpRequest) -> HttpResponse:
    if totp_device(request.user):
        return render(request, "accounts/totp_enrol.html", {"enrolled": True})
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if totp_enrolment_confirm(user=request.user, code=form.cleaned_data["code"], request=request):
            messages.success(request, "Two-factor authentication is on. Sign-off will ask for a code too.")
            return redirect("totp-enrol")
        form.add_error("code", "That code is not right; check the app's clock and try the current code.")
        device = request.user.totpdevice_set.filter(confirmed=False).first() or totp_enrolment_start(
            user=request.user
        )
    else:
        device = totp_enrolment_start(user=request.user)
    context = {"form": form, "secret": totp_secret(device), "config_url": device.config_url}
    return render(request, "accounts/totp_enrol.html", context, status=400 if form.errors else 200)
