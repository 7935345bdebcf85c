"""The report lifecycle through medportal.reporting.services, and the guards on signed reports."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from pydicom.uid import generate_uid

from medportal.audit.models import AuditEvent, EventType, Outcome
from medportal.celery import DRAFT_TASK
from medportal.imaging.models import Patient, Study
from medportal.reporting.lifecycle import IllegalTransition, ReportError
from medportal.reporting.models import Report, ReportStatus, ReportVersion, SignedReportError
from medportal.reporting.services import drafts, editing
from medportal.reporting.services.drafts import DraftProvenance
from medportal.reporting.services.editing import ReauthenticationFailed, ReportConflict
from tests.conftest import PASSWORD, make_user

DRAFT = "FINDINGS: The lungs are clear.\nNo pleural effusion.\nIMPRESSION: Normal chest radiograph."
PROVENANCE = DraftProvenance(
    model_id="tiny",
    model_revision="rev-1",
    prompt="Write the report with a FINDINGS section and an IMPRESSION section.",
    generation_params={"max_new_tokens": 64, "do_sample": False},
    preprocessing={"frames": 1, "size": [64, 64]},
    time_to_first_token_ms=12.5,
    tokens_per_second=40.0,
    generated_tokens=17,
)


def new_report() -> Report:
    patient, _ = Patient.objects.get_or_create(patient_id="MRN-1", defaults={"name": "Test Patient"})
    study = Study.objects.create(
        study_uid=generate_uid(), patient=patient, accession_number="ACC-1", modality="CR"
    )
    return drafts.report_for_study(study=study)


def reload(report: Report) -> Report:
    return Report.objects.get(pk=report.pk)


def drafted(report: Report, user, text: str = DRAFT) -> Report:
    """Request a draft and run the worker's service path for it."""
    attempt = drafts.draft_request(report=report, user=user).attempt
    claim = drafts.draft_start(report_id=report.pk, attempt=attempt)
    assert claim
    assert drafts.draft_finish(claim=claim, text=text, provenance=PROVENANCE)
    return reload(report)


def signed(report: Report, user) -> Report:
    report = drafted(report, user)
    return editing.report_sign(report=report, user=user, password=PASSWORD)


@pytest.fixture
def report(db) -> Report:
    return new_report()


class Broker:
    """The real Redis broker: which draft tasks were sent to the worker queue during a test."""

    def __init__(self):
        self.client = redis.Redis.from_url(settings.REDIS_URL)
        self.queue = settings.CELERY_TASK_DEFAULT_QUEUE
        self.before = set(self._raw())

    def _raw(self) -> list[bytes]:
        return self.client.lrange(self.queue, 0, -1)

    def new_raw(self) -> list[bytes]:
        return [message for message in self._raw() if message not in self.before]

    def sent_drafts(self) -> list[list]:
        """The args of every draft task sent since the test began."""
        sent = []
        for raw in self.new_raw():
            message = json.loads(raw)
            if message["headers"].get("task") == DRAFT_TASK:
                args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
                sent.append(args)
        return sent

    def close(self) -> None:
        # Leave no task behind for a worker that might consume this queue later.
        for message in self.new_raw():
            self.client.lrem(self.queue, 0, message)
        self.client.close()


@pytest.fixture
def broker():
    broker = Broker()
    yield broker
    broker.close()


# -- draft requests -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_draft_request_queues_the_report_and_sends_the_task_after_commit(
    report, radiologist, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        queued = drafts.draft_request(report=report, user=radiologist)
        assert broker.sent_drafts() == []  # nothing reaches the worker before the commit
    assert len(callbacks) == 2  # the draft task, and the worklist refresh (medportal.streaming)
    assert (queued.status, queued.attempt) == (ReportStatus.QUEUED, 1)
    stored = reload(report)
    assert (stored.status, stored.attempt) == (ReportStatus.QUEUED, 1)
    assert stored.draft_requested_at is not None
    assert broker.sent_drafts() == [[report.pk, 1]]
    event = AuditEvent.objects.filter(object_type="report", object_id=str(report.pk)).last()
    assert (event.description, event.username, event.outcome) == (
        "AI draft requested",
        "rita",
        Outcome.SUCCESS,
    )
    assert event.event_type == EventType.PATIENT_RECORD
    assert (event.patient_id, event.accession_number) == ("MRN-1", "ACC-1")


@pytest.mark.django_db
def test_a_second_request_is_refused_while_queued_or_drafting(report, radiologist):
    drafts.draft_request(report=report, user=radiologist)
    with pytest.raises(ReportError, match="already in progress"):
        drafts.draft_request(report=report, user=radiologist)
    assert drafts.draft_start(report_id=report.pk, attempt=1)
    with pytest.raises(ReportError, match="already in progress"):
        drafts.draft_request(report=report, user=radiologist)
    stored = reload(report)
    assert (stored.status, stored.attempt) == (ReportStatus.DRAFTING, 1)


@pytest.mark.django_db
def test_a_failed_or_finished_draft_can_be_requested_again_as_a_new_attempt(report, radiologist):
    drafts.draft_request(report=report, user=radiologist)
    assert drafts.draft_fail(report_id=report.pk, attempt=1, reason="model not loaded")
    retried = drafts.draft_request(report=report, user=radiologist)
    assert (retried.status, retried.attempt, retried.failure_reason) == (ReportStatus.QUEUED, 2, "")

    claim = drafts.draft_start(report_id=report.pk, attempt=2)
    assert drafts.draft_finish(claim=claim, text=DRAFT, provenance=PROVENANCE)
    redraft = drafts.draft_request(report=report, user=radiologist)
    assert (redraft.status, redraft.attempt, redraft.draft_text) == (ReportStatus.QUEUED, 3, "")


# -- the worker's side ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_draft_is_claimed_exactly_once_and_only_for_the_current_attempt(report, radiologist):
    assert not drafts.draft_start(report_id=report.pk, attempt=1)  # nothing was requested yet
    drafts.draft_request(report=report, user=radiologist)
    assert not drafts.draft_start(report_id=report.pk, attempt=0)
    assert not drafts.draft_start(report_id=report.pk, attempt=2)
    assert reload(report).status == ReportStatus.QUEUED

    first = drafts.draft_start(report_id=report.pk, attempt=1)
    assert first.number == 1
    stored = reload(report)
    assert stored.status == ReportStatus.DRAFTING
    assert stored.draft_started_at is not None


@pytest.mark.django_db
def test_a_redelivered_task_takes_over_and_the_old_holder_can_no_longer_write(report, radiologist):
    drafts.draft_request(report=report, user=radiologist)
    first = drafts.draft_start(report_id=report.pk, attempt=1)
    assert drafts.draft_progress(claim=first, text="FINDINGS: half")
    # Its worker died; Celery redelivers the task, which claims the draft again from nothing.
    second = drafts.draft_start(report_id=report.pk, attempt=1)
    assert second.number == 2 and second.stream == "1.2"
    assert reload(report).draft_text == ""
    assert not drafts.draft_progress(claim=first, text="FINDINGS: stale")
    assert not drafts.draft_finish(claim=first, text=DRAFT, provenance=PROVENANCE)
    assert drafts.draft_finish(claim=second, text=DRAFT, provenance=PROVENANCE)
    assert reload(report).versions.count() == 1


@pytest.mark.django_db
def test_a_draft_whose_worker_keeps_dying_fails_visibly(report, radiologist):
    drafts.draft_request(report=report, user=radiologist)
    for _ in range(drafts.MAX_DRAFT_CLAIMS):
        assert drafts.draft_start(report_id=report.pk, attempt=1)
    assert drafts.draft_start(report_id=report.pk, attempt=1) is None
    stored = reload(report)
    assert stored.status == ReportStatus.FAILED
    assert f"stopped {drafts.MAX_DRAFT_CLAIMS} times" in stored.failure_reason


@pytest.mark.django_db
def test_progress_is_saved_only_for_the_claimed_attempt(report, radiologist):
    drafts.draft_request(report=report, user=radiologist)
    unclaimed = drafts.DraftClaim(report.pk, 1, 1)
    assert not drafts.draft_progress(claim=unclaimed, text="FIND")  # not claimed yet
    assert reload(report).draft_text == ""

    claim = drafts.draft_start(report_id=report.pk, attempt=1)
    assert drafts.draft_progress(claim=claim, text="FINDINGS: The lungs")
    assert not drafts.draft_progress(claim=drafts.DraftClaim(report.pk, 2, 1), text="something else")
    assert reload(report).draft_text == "FINDINGS: The lungs"


@pytest.mark.django_db
def test_a_superseded_attempt_cannot_write(report, radiologist):
    drafts.draft_request(report=report, user=radiologist)
    claim = drafts.draft_start(report_id=report.pk, attempt=1)
    drafts.draft_progress(claim=claim, text="FINDINGS: old")
    assert drafts.draft_fail(report_id=report.pk, attempt=1, reason="worker lost", claim=claim)
    drafts.draft_request(report=report, user=radiologist)  # attempt 2, still queued

    assert not drafts.draft_progress(claim=claim, text="FINDINGS: stale")
    assert not drafts.draft_finish(claim=claim, text=DRAFT, provenance=PROVENANCE)
    assert not drafts.draft_fail(report_id=report.pk, attempt=1, reason="late failure", claim=claim)
    stored = reload(report)
    assert (stored.status, stored.attempt, stored.draft_text) == (ReportStatus.QUEUED, 2, "")
    assert (stored.findings, stored.version, stored.failure_reason) == ("", 0, "")
    assert not stored.versions.exists()


@pytest.mark.django_db
def test_a_failed_draft_records_the_reason_and_is_audited(report, radiologist):
    drafts.draft_request(report=report, user=radiologist)
    assert not drafts.draft_fail(report_id=report.pk, attempt=2, reason="not my attempt")
    assert drafts.draft_fail(report_id=report.pk, attempt=1, reason="CUDA out of memory")
    assert not drafts.draft_start(report_id=report.pk, attempt=1)
    stored = reload(report)
    assert (stored.status, stored.failure_reason) == (ReportStatus.FAILED, "CUDA out of memory")
    event = AuditEvent.objects.filter(object_type="report", object_id=str(report.pk)).last()
    assert (event.description, event.outcome) == ("AI draft failed", Outcome.SERIOUS_FAILURE)
    assert event.detail == {"reason": "CUDA out of memory", "attempt": 1}


@pytest.mark.django_db
def test_a_finished_draft_is_split_into_sections_and_becomes_version_1(report, radiologist):
    drafts.draft_request(report=report, user=radiologist)
    claim = drafts.draft_start(report_id=report.pk, attempt=1)
    assert drafts.draft_finish(claim=claim, text=DRAFT, provenance=PROVENANCE)
    assert not drafts.draft_finish(claim=claim, text="again", provenance=PROVENANCE)

    stored = reload(report)
    assert stored.status == ReportStatus.DRAFTED
    assert stored.draft_text == DRAFT
    assert stored.findings == "The lungs are clear.\nNo pleural effusion."
    assert stored.impression == "Normal chest radiograph."
    assert stored.version == 1
    assert stored.draft_finished_at is not None
    assert (stored.model_id, stored.model_revision, stored.prompt) == (
        "tiny",
        "rev-1",
        PROVENANCE.prompt,
    )
    assert stored.generation_params == {"max_new_tokens": 64, "do_sample": False}
    assert stored.preprocessing == {"frames": 1, "size": [64, 64]}
    assert (stored.time_to_first_token_ms, stored.tokens_per_second, stored.generated_tokens) == (
        12.5,
        40.0,
        17,
    )

    [version] = stored.versions.all()
    assert (version.number, version.source, version.author) == (1, ReportVersion.AI, None)
    assert (version.findings, version.impression) == (stored.findings, stored.impression)
    event = AuditEvent.objects.filter(object_type="report", object_id=str(report.pk)).last()
    assert event.description == "AI draft written"
    assert event.detail == {"model_id": "tiny", "attempt": 1, "claim": 1}


@pytest.mark.django_db
def test_a_draft_without_headings_is_all_findings(report, radiologist):
    stored = drafted(report, radiologist, text="Heart size is normal. The mediastinum is unremarkable.")
    assert stored.findings == "Heart size is normal. The mediastinum is unremarkable."
    assert stored.impression == ""


# -- the radiologist's side -----------------------------------------------------------


@pytest.mark.django_db
def test_each_save_is_a_new_version(report, radiologist):
    report = drafted(report, radiologist)
    first = editing.report_save(
        report=report, user=radiologist, findings="Clear lungs.", impression="Normal.", expected_version=1
    )
    second = editing.report_save(
        report=report,
        user=radiologist,
        findings="Clear lungs.",
        impression="No acute disease.",
        expected_version=2,
    )
    assert (first.version, second.version) == (2, 3)
    stored = reload(report)
    assert (stored.status, stored.findings, stored.impression, stored.version) == (
        ReportStatus.IN_REVIEW,
        "Clear lungs.",
        "No acute disease.",
        3,
    )
    versions = list(stored.versions.values_list("number", "source", "author__username", "impression"))
    assert versions == [
        (1, ReportVersion.AI, None, "Normal chest radiograph."),
        (2, ReportVersion.EDIT, "rita", "Normal."),
        (3, ReportVersion.EDIT, "rita", "No acute disease."),
    ]
    event = AuditEvent.objects.filter(object_type="report", object_id=str(report.pk)).last()
    assert (event.description, event.username, event.detail) == ("Report edited", "rita", {"version": 3})


@pytest.mark.django_db
def test_a_report_can_be_written_by_hand_without_a_draft(report, radiologist):
    saved = editing.report_save(
        report=report, user=radiologist, findings="Hand written.", impression="", expected_version=0
    )
    assert (saved.status, saved.version) == (ReportStatus.IN_REVIEW, 1)


@pytest.mark.django_db
def test_a_stale_save_is_a_conflict_that_carries_the_newer_report(report, radiologist, second_radiologist):
    report = drafted(report, radiologist)
    editing.report_save(
        report=report,
        user=second_radiologist,
        findings="Ravi's text.",
        impression="Ravi's.",
        expected_version=1,
    )
    with pytest.raises(ReportConflict) as conflict:
        editing.report_save(
            report=report, user=radiologist, findings="Rita's text.", impression="Rita's.", expected_version=1
        )
    assert conflict.value.report.version == 2
    assert conflict.value.report.findings == "Ravi's text."
    stored = reload(report)
    assert (stored.findings, stored.version, stored.versions.count()) == ("Ravi's text.", 2, 2)


@pytest.mark.django_db
def test_a_report_cannot_be_edited_while_the_draft_is_being_written(report, radiologist):
    drafts.draft_request(report=report, user=radiologist)
    with pytest.raises(ReportError, match="still being written"):
        editing.report_save(report=report, user=radiologist, findings="x", impression="y", expected_version=0)
    assert reload(report).findings == ""


@pytest.mark.django_db
def test_signing_needs_the_right_password_and_a_wrong_one_is_audited(report, radiologist):
    report = drafted(report, radiologist)
    with pytest.raises(ReauthenticationFailed):
        editing.report_sign(report=report, user=radiologist, password="wrong password")
    stored = reload(report)
    assert (stored.status, stored.signed_by, stored.signed_at) == (ReportStatus.DRAFTED, None, None)
    event = AuditEvent.objects.filter(object_type="report", object_id=str(report.pk)).last()
    assert (event.description, event.username) == ("Sign-off refused: wrong password", "rita")
    assert event.outcome == Outcome.MINOR_FAILURE == 4


@pytest.mark.django_db
def test_an_empty_report_cannot_be_signed(report, radiologist):
    report = drafted(report, radiologist, text="   \n  ")
    assert (report.status, report.findings, report.impression) == (ReportStatus.DRAFTED, "", "")
    with pytest.raises(ReportError, match="empty"):
        editing.report_sign(report=report, user=radiologist, password=PASSWORD)
    assert reload(report).status == ReportStatus.DRAFTED


@pytest.mark.django_db
def test_only_a_drafted_report_can_be_signed(report, radiologist):
    with pytest.raises(IllegalTransition, match="nothing to sign yet"):
        editing.report_sign(report=report, user=radiologist, password=PASSWORD)
    drafts.draft_request(report=report, user=radiologist)
    with pytest.raises(IllegalTransition, match="still being written"):
        editing.report_sign(report=report, user=radiologist, password=PASSWORD)
    assert reload(report).status == ReportStatus.QUEUED


@pytest.mark.django_db
def test_signing_a_version_that_was_edited_since_is_a_conflict(report, radiologist, second_radiologist):
    report = drafted(report, radiologist)
    editing.report_save(
        report=report, user=second_radiologist, findings="New.", impression="New.", expected_version=1
    )
    with pytest.raises(ReportConflict) as conflict:
        editing.report_sign(report=report, user=radiologist, password=PASSWORD, expected_version=1)
    assert conflict.value.report.findings == "New."
    assert reload(report).status == ReportStatus.IN_REVIEW


@pytest.mark.django_db
def test_a_report_is_signed_once_and_then_nothing_changes_it(report, radiologist, second_radiologist):
    report = drafted(report, radiologist)
    result = editing.report_sign(report=report, user=radiologist, password=PASSWORD, expected_version=1)
    assert (result.status, result.signed_by, result.version) == (ReportStatus.SIGNED, radiologist, 1)
    assert result.signed_at is not None
    event = AuditEvent.objects.filter(object_type="report", object_id=str(report.pk)).last()
    assert (event.description, event.username, event.outcome) == ("Report signed", "rita", Outcome.SUCCESS)

    with pytest.raises(ReportError, match="already signed"):
        editing.report_sign(report=report, user=second_radiologist, password=PASSWORD)
    with pytest.raises(ReportError, match="signed"):
        editing.report_save(
            report=report, user=radiologist, findings="Changed.", impression="Changed.", expected_version=1
        )
    with pytest.raises(ReportError, match="signed"):
        drafts.draft_request(report=report, user=radiologist)
    # A worker still holding an old attempt cannot touch it either.
    old = drafts.DraftClaim(report.pk, 1, 1)
    assert not drafts.draft_start(report_id=report.pk, attempt=1)
    assert not drafts.draft_progress(claim=old, text="x")
    assert not drafts.draft_fail(report_id=report.pk, attempt=1, reason="x", claim=old)

    stored = reload(report)
    assert (stored.status, stored.signed_by, stored.signed_at) == (
        ReportStatus.SIGNED,
        radiologist,
        result.signed_at,
    )
    assert (stored.findings, stored.impression, stored.version, stored.attempt) == (
        "The lungs are clear.\nNo pleural effusion.",
        "Normal chest radiograph.",
        1,
        1,
    )
    assert stored.versions.count() == 1


# -- guards below the services ----------------------------------------------------------


@pytest.mark.django_db
def test_the_model_refuses_to_save_or_delete_a_signed_report(report, radiologist):
    report = signed(report, radiologist)
    report.findings = "Changed."
    with pytest.raises(SignedReportError):
        report.save()
    with pytest.raises(SignedReportError):
        report.delete()
    assert reload(report).findings == "The lungs are clear.\nNo pleural effusion."


def _refused_by_the_database(sql: str, params: list) -> None:
    with (
        pytest.raises(IntegrityError, match="immutable"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


@pytest.mark.django_db
def test_the_database_refuses_raw_sql_changes_to_a_signed_report(report, radiologist):
    report = signed(report, radiologist)
    _refused_by_the_database(
        "UPDATE reporting_report SET findings = %s WHERE id = %s", ["Tampered.", report.pk]
    )
    _refused_by_the_database("UPDATE reporting_report SET status = 'drafted' WHERE id = %s", [report.pk])
    _refused_by_the_database("DELETE FROM reporting_report WHERE id = %s", [report.pk])
    stored = reload(report)
    assert (stored.status, stored.findings) == (
        ReportStatus.SIGNED,
        "The lungs are clear.\nNo pleural effusion.",
    )


@pytest.mark.django_db
def test_the_database_refuses_orm_updates_to_a_signed_report(report, radiologist):
    unsigned = new_report()
    assert Report.objects.filter(pk=unsigned.pk).update(findings="Allowed.") == 1  # unsigned rows may change

    report = signed(report, radiologist)
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        Report.objects.filter(pk=report.pk).update(findings="Tampered.")
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        Report.objects.filter(pk=report.pk).update(status=ReportStatus.DRAFTED, signed_by=None)
    stored = reload(report)
    assert (stored.status, stored.findings) == (
        ReportStatus.SIGNED,
        "The lungs are clear.\nNo pleural effusion.",
    )


@pytest.mark.django_db
def test_the_database_refuses_changes_to_report_versions(report, radiologist):
    report = drafted(report, radiologist)  # versions are immutable whether or not the report is signed
    version = report.versions.get()
    _refused_by_the_database(
        "UPDATE reporting_reportversion SET findings = %s WHERE id = %s", ["Tampered.", version.pk]
    )
    _refused_by_the_database("DELETE FROM reporting_reportversion WHERE id = %s", [version.pk])
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        ReportVersion.objects.filter(pk=version.pk).update(impression="Tampered.")
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        ReportVersion.objects.filter(pk=version.pk).delete()
    stored = ReportVersion.objects.get(pk=version.pk)
    assert (stored.findings, stored.impression) == (version.findings, version.impression)


@pytest.mark.django_db
def test_the_admin_cannot_save_a_signed_report(client, report, radiologist):
    report = signed(report, radiologist)
    client.force_login(make_user("root", superuser=True))
    url = reverse("admin:reporting_report_change", args=[report.pk])

    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # shown read-only

    response = client.post(
        url, {"findings": "Tampered.", "impression": "Tampered.", "failure_reason": "", "_save": "Save"}
    )
    assert response.status_code == 403
    stored = reload(report)
    assert (stored.status, stored.findings, stored.impression) == (
        ReportStatus.SIGNED,
        "The lungs are clear.\nNo pleural effusion.",
        "Normal chest radiograph.",
    )
    delete = client.post(reverse("admin:reporting_report_delete", args=[report.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert Report.objects.filter(pk=report.pk).exists()


# -- two radiologists at the same moment ----------------------------------------------


def _waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # a transaction otherwise sees one snapshot
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_two_radiologists_signing_at_once_exactly_one_succeeds(radiologist, second_radiologist, broker):
    report = drafted(new_report(), radiologist)
    outcomes: dict[str, object] = {}
    ready = threading.Barrier(2)

    def sign(user) -> None:
        try:
            ready.wait(timeout=30)
            editing.report_sign(report=report, user=user, password=PASSWORD)
            outcomes[user.username] = "signed"
        except Exception as exc:  # recorded and asserted below
            outcomes[user.username] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=sign, args=(user,)) for user in (radiologist, second_radiologist)]
    # Hold the report's row so that both sign-offs are in flight together, then let them race.
    with transaction.atomic():
        Report.objects.select_for_update().get(pk=report.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while _waiting_for_a_lock() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        both_waited = _waiting_for_a_lock() == 2
    for thread in threads:
        thread.join(timeout=60)

    assert both_waited
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(outcomes) == ["ravi", "rita"]
    successes = [name for name, outcome in outcomes.items() if outcome == "signed"]
    failures = [outcome for outcome in outcomes.values() if outcome != "signed"]
    assert len(successes) == 1
    assert len(failures) == 1
    assert isinstance(failures[0], ReportError)
    assert "already signed" in str(failures[0])
    stored = Report.objects.select_related("signed_by").get(pk=report.pk)
    assert stored.status == ReportStatus.SIGNED
    assert stored.signed_by.username == successes[0]
    assert AuditEvent.objects.filter(object_id=str(report.pk), description="Report signed").count() == 1
