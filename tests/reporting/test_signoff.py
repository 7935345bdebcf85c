"""Sign-off: one audit event per refusal, a lockout after repeated wrong passwords (the login's
lockout, django-axes), claims enforced on save and sign, and every actor named."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection, transaction
from django.urls import reverse

from medportal.access.roles import Role
from medportal.audit.actors import process_actor_set
from medportal.audit.models import AuditEvent, Outcome
from medportal.reporting.models import Report, ReportStatus
from medportal.reporting.services import claims, drafts, editing
from medportal.reporting.services.signoff import ClaimedByAnother
from tests.conftest import PASSWORD, make_user, token_header
from tests.reporting.test_services import _waiting_for_a_lock, broker, drafted, new_report  # noqa: F401


def refusals(report: Report) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(object_id=str(report.pk), outcome=Outcome.MINOR_FAILURE).order_by("seq")
    )


@pytest.mark.django_db
def test_one_wrong_password_at_sign_off_writes_one_audit_event(client, radiologist):
    report = drafted(new_report(), radiologist)
    client.force_login(radiologist)
    response = client.post(
        reverse("report-sign", args=[report.pk]), {"password": "wrong password", "version": 1}
    )
    assert response.status_code == 302
    assert [e.description for e in refusals(report)] == ["Sign-off refused: wrong password"]

    response = client.post(
        reverse("api-report-sign", args=[report.pk]),
        json.dumps({"password": "wrong again"}),
        content_type="application/json",
        **token_header(radiologist),
    )
    assert response.status_code == 403
    assert len(refusals(report)) == 2


@pytest.mark.django_db
def test_repeated_wrong_passwords_at_sign_off_lock_the_account_as_failed_logins_do(
    client, radiologist, settings
):
    report = drafted(new_report(), radiologist)
    client.force_login(radiologist)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("report-sign", args=[report.pk]), {"password": "wrong password", "version": 1})
    alert = AuditEvent.objects.filter(description="Login locked out after repeated failures").get()
    assert alert.username == "rita"

    # Locked: the right password no longer signs, and the login page refuses it too.
    response = client.post(
        reverse("report-sign", args=[report.pk]), {"password": PASSWORD, "version": 1}, follow=True
    )
    assert "your account is locked" in response.content.decode()
    assert Report.objects.get(pk=report.pk).status != ReportStatus.SIGNED
    assert refusals(report)[-1].detail["locked_out"] is True
    client.logout()
    response = client.post(reverse("login"), {"username": "rita", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert response.status_code in (403, 429)


@pytest.mark.django_db(transaction=True)
def test_refused_concurrent_sign_offs_each_write_one_audit_event(radiologist, broker):  # noqa: F811
    signers = [radiologist, make_user("ravi", Role.RADIOLOGIST), make_user("rhea", Role.RADIOLOGIST)]
    report = drafted(new_report(), radiologist)
    outcomes: dict[str, object] = {}
    ready = threading.Barrier(len(signers))

    def sign(user) -> None:
        try:
            ready.wait(timeout=30)
            editing.report_sign(report=report, user=user, password=PASSWORD)
            outcomes[user.username] = "signed"
        except Exception as exc:  # asserted below
            outcomes[user.username] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=sign, args=(user,)) for user in signers]
    with transaction.atomic():
        Report.objects.select_for_update().get(pk=report.pk)  # all three wait on the row, then race
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while _waiting_for_a_lock() < len(signers) and time.monotonic() < deadline:
            time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=60)

    refused = sorted(name for name, outcome in outcomes.items() if outcome != "signed")
    assert len(refused) == 2
    for name in refused:
        events = [e for e in refusals(report) if e.username == name]
        assert [e.description for e in events] == ["Sign-off refused: This report is already signed."], name


@pytest.mark.django_db
def test_a_claimed_study_cannot_be_saved_or_signed_by_another_radiologist(
    client, radiologist, second_radiologist
):
    report = drafted(new_report(), radiologist)
    claims.report_claim(report=report, user=radiologist)
    with pytest.raises(ClaimedByAnother, match="rita claimed this study; only they can edit it"):
        editing.report_save(
            report=report, user=second_radiologist, findings="Mine.", impression="Mine.", expected_version=1
        )
    client.force_login(second_radiologist)
    response = client.post(
        reverse("report-sign", args=[report.pk]), {"password": PASSWORD, "version": 1}, follow=True
    )
    assert "rita claimed this study; only they can sign it" in response.content.decode()
    assert Report.objects.get(pk=report.pk).status == ReportStatus.IN_REVIEW
    assert [e.description[:22] for e in refusals(report)] == [
        "Edit refused: rita cla",
        "Sign-off refused: rita",
    ]

    # An admin does not override a claim silently: the study is reassigned (audited), then signed.
    admin = make_user("ada", Role.ADMIN)
    claims.report_assign(report=report, assignee=second_radiologist, user=admin)
    signed = editing.report_sign(report=report, user=second_radiologist, password=PASSWORD)
    assert signed.signed_by == second_radiologist


@pytest.mark.django_db
def test_events_without_a_person_name_the_process(radiologist):
    report = new_report()
    attempt = drafts.draft_request(report=report, user=radiologist).attempt
    process_actor_set("worker:celery@gpu1")
    try:
        drafts.draft_fail(report_id=report.pk, attempt=attempt, reason="the model could not load")
    finally:
        process_actor_set("")
    event = AuditEvent.objects.get(object_id=str(report.pk), description="AI draft failed")
    assert event.username == "worker:celery@gpu1"
