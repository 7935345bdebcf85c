"""The report's state machine as radiologists meet it: review, sign-off, addenda, cancel,
and clear refusals for every move the machine does not have."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from medportal.access.roles import Role
from medportal.audit.models import AuditEvent, Outcome
from medportal.reporting import lifecycle
from medportal.reporting.lifecycle import IllegalTransition, ReportError, ReportStatus
from medportal.reporting.models import Addendum
from medportal.reporting.services import claims, drafts, editing
from medportal.reporting.services.editing import ReauthenticationFailed
from medportal.reporting.signals import report_signed
from tests.conftest import PASSWORD, make_user
from tests.reporting.test_services import PROVENANCE, drafted, new_report, reload, signed

S = ReportStatus


@pytest.fixture
def report(db):
    return new_report()


def test_every_action_from_every_state_either_moves_or_says_why():
    for action, moves in lifecycle.TRANSITIONS.items():
        for status in S.values:
            if status in moves:
                assert lifecycle.transition(status, action) == moves[status]
            else:
                with pytest.raises(IllegalTransition) as refused:
                    lifecycle.transition(status, action)
                message = str(refused.value)
                assert message.endswith(".") and "_" not in message, (action, status, message)


@pytest.mark.django_db
def test_claiming_a_drafted_report_puts_it_in_review_and_releasing_gives_it_back(report, radiologist):
    report = drafted(report, radiologist)
    assert report.status == S.DRAFTED
    assert claims.report_claim(report=report, user=radiologist).status == S.IN_REVIEW
    assert claims.report_release(report=report, user=radiologist).status == S.DRAFTED


@pytest.mark.django_db
def test_a_draft_that_ends_after_the_study_was_claimed_is_in_review(report, radiologist):
    attempt = drafts.draft_request(report=report, user=radiologist).attempt
    claim = drafts.draft_start(report_id=report.pk, attempt=attempt)
    assert claims.report_claim(report=report, user=radiologist).status == S.DRAFTING
    assert drafts.draft_finish(claim=claim, text="FINDINGS: Clear.", provenance=PROVENANCE)
    assert reload(report).status == S.IN_REVIEW


@pytest.mark.django_db
def test_an_edited_report_is_in_review_and_can_be_signed(report, radiologist):
    report = drafted(report, radiologist)
    edited = editing.report_save(
        report=report, user=radiologist, findings="Clear.", impression="Normal.", expected_version=1
    )
    assert edited.status == S.IN_REVIEW
    assert editing.report_sign(report=edited, user=radiologist, password=PASSWORD).status == S.SIGNED


@pytest.mark.django_db(transaction=True)
def test_addenda_are_signed_numbered_in_order_and_leave_the_report_text_alone(report, radiologist):
    sent = []
    report_signed.connect(lambda **kw: sent.append(kw["addendum_id"]), weak=False, dispatch_uid="t-add")
    try:
        report = signed(report, radiologist)
        first = editing.addendum_sign(
            report=report, user=radiologist, text="Rib fracture on the left.", password=PASSWORD
        )
        second = editing.addendum_sign(
            report=report, user=radiologist, text="Discussed with Dr. Lee.", password=PASSWORD
        )
    finally:
        report_signed.disconnect(dispatch_uid="t-add")
    stored = reload(report)
    assert stored.status == S.AMENDED
    assert (stored.findings, stored.impression) == (report.findings, report.impression)
    assert [(a.number, a.text) for a in stored.addenda.all()] == [
        (1, "Rib fracture on the left."),
        (2, "Discussed with Dr. Lee."),
    ]
    assert sent == [None, first.pk, second.pk]  # the report's own signature, then each addendum
    assert AuditEvent.objects.filter(object_id=str(report.pk), description="Addendum signed").count() == 2


@pytest.mark.django_db
def test_an_addendum_needs_a_signed_report_text_and_the_password(report, radiologist):
    report = drafted(report, radiologist)
    with pytest.raises(IllegalTransition, match="Only a signed report takes addenda"):
        editing.addendum_sign(report=report, user=radiologist, text="More.", password=PASSWORD)
    report = editing.report_sign(report=report, user=radiologist, password=PASSWORD)
    with pytest.raises(ReportError, match="empty addendum"):
        editing.addendum_sign(report=report, user=radiologist, text="   ", password=PASSWORD)
    with pytest.raises(ReauthenticationFailed):
        editing.addendum_sign(report=report, user=radiologist, text="More.", password="wrong")
    assert not Addendum.objects.exists()
    assert reload(report).status == S.SIGNED


@pytest.mark.django_db
def test_a_signed_or_amended_report_refuses_every_change_with_a_clear_reason(report, radiologist):
    report = signed(report, radiologist)
    editing.addendum_sign(report=report, user=radiologist, text="More.", password=PASSWORD)
    for attempt_change, message in [
        (lambda: drafts.draft_request(report=report, user=radiologist), "Corrections are addenda"),
        (
            lambda: editing.report_save(
                report=report, user=radiologist, findings="x", impression="y", expected_version=2
            ),
            "Corrections are addenda",
        ),
        (lambda: editing.report_sign(report=report, user=radiologist, password=PASSWORD), "already signed"),
        (lambda: editing.report_cancel(report=report, user=radiologist, reason="x"), "cannot be cancelled"),
        (lambda: claims.report_claim(report=report, user=radiologist), "cannot be claimed"),
    ]:
        with pytest.raises(IllegalTransition, match=message):
            attempt_change()
    assert reload(report).status == S.AMENDED


@pytest.mark.django_db
def test_the_database_lets_an_addendum_amend_a_signed_report_and_nothing_else(report, radiologist):
    report = signed(report, radiologist)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE reporting_report SET status = 'amended' WHERE id = %s", [report.pk])
        for statement in [
            "UPDATE reporting_report SET findings = 'forged' WHERE id = %s",
            "UPDATE reporting_report SET status = 'amended', impression = 'forged' WHERE id = %s",
            "UPDATE reporting_report SET status = 'drafted' WHERE id = %s",
            "DELETE FROM reporting_report WHERE id = %s",
        ]:
            with pytest.raises(IntegrityError), transaction.atomic():
                cursor.execute(statement, [report.pk])
    addendum = editing.addendum_sign(report=report, user=radiologist, text="More.", password=PASSWORD)
    with connection.cursor() as cursor:
        for statement in [
            "UPDATE reporting_addendum SET text = 'forged' WHERE id = %s",
            "DELETE FROM reporting_addendum WHERE id = %s",
        ]:
            with pytest.raises(IntegrityError), transaction.atomic():
                cursor.execute(statement, [addendum.pk])
    assert reload(report).findings == report.findings
    assert Addendum.objects.get(pk=addendum.pk).text == "More."


@pytest.mark.django_db
def test_cancelling_a_draft_in_progress_stops_the_worker_writing(report, radiologist):
    attempt = drafts.draft_request(report=report, user=radiologist).attempt
    claim = drafts.draft_start(report_id=report.pk, attempt=attempt)
    cancelled = editing.report_cancel(report=report, user=radiologist, reason="Ordered in error.")
    assert (cancelled.status, cancelled.cancel_reason) == (S.CANCELLED, "Ordered in error.")
    assert not drafts.draft_progress(claim=claim, text="late text")
    assert not drafts.draft_finish(claim=claim, text="FINDINGS: late.", provenance=PROVENANCE)
    stored = reload(report)
    assert (stored.status, stored.draft_text, stored.findings) == (S.CANCELLED, "", "")
    with pytest.raises(IllegalTransition, match="was cancelled; it cannot be sent for an AI draft"):
        drafts.draft_request(report=report, user=radiologist)


@pytest.mark.django_db
def test_a_cancel_needs_a_reason_and_a_radiologist_or_admin(report, radiologist, technologist):
    with pytest.raises(ReportError, match="Say why"):
        editing.report_cancel(report=report, user=radiologist, reason=" ")
    with pytest.raises(ReportError, match="radiologist or an admin"):
        editing.report_cancel(report=report, user=technologist, reason="Duplicate.")
    assert reload(report).status == S.RECEIVED


@pytest.mark.django_db
def test_a_radiologist_signs_an_addendum_on_the_study_page(client, report, radiologist):
    report = signed(report, radiologist)
    client.force_login(radiologist)
    url = reverse("report-addendum", args=[report.pk])

    refused = client.post(url, {"text": "Extra finding.", "password": "wrong"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 409
    assert "The password is not correct" in refused.content.decode()

    response = client.post(url, {"text": "Extra finding.", "password": PASSWORD}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Addendum 1" in page and "Extra finding." in page and "Amended" in page
    refusal = AuditEvent.objects.get(object_id=str(report.pk), description="Sign-off refused: wrong password")
    assert refusal.outcome == Outcome.MINOR_FAILURE


@pytest.mark.django_db
def test_an_admin_cancels_a_study_from_its_page_and_it_leaves_the_open_worklist(client, report):
    admin = make_user("ada", Role.ADMIN)
    client.force_login(admin)
    response = client.post(
        reverse("report-cancel", args=[report.pk]), {"reason": "Duplicate order."}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "This report was cancelled: Duplicate order." in response.content.decode()
    worklist = client.get(reverse("worklist"), {"status": "open"}).content.decode()
    assert report.study.accession_number not in worklist
