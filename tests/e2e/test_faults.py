"""Faults: a worker killed in the middle of a draft (kill -9), again and again."""

from __future__ import annotations

import io
import os
import signal
import time

import psutil
import pydicom
import pytest
from pydicom.uid import generate_uid
from websockets.sync.client import connect

from medportal.reporting.models import Report, ReportStatus, ReportVersion
from medportal.reporting.services.drafts import MAX_DRAFT_CLAIMS
from tests.conftest import dicom_path, token_header
from tests.stream_client import DraftFollower

pytestmark = [pytest.mark.e2e]
KILLS = int(os.environ.get("MEDPORTAL_FAULT_KILLS", "5"))
LONG_DRAFT = {"MEDPORTAL_MAX_NEW_TOKENS": 1500}


def wait_for(predicate, timeout: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def kill_pool_child(stack) -> int:
    """SIGKILL the worker process that runs the draft (the prefork pool's child)."""
    children = psutil.Process(stack.processes["worker"].pid).children()
    assert children, "the worker has no pool process"
    os.kill(children[0].pid, signal.SIGKILL)
    return children[0].pid


def upload(api) -> dict:
    """A new study each time (the same file again would be the same study)."""
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.BodyPartExamined = "HEAD"  # the sample names none, and a draft never guesses one
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    data = io.BytesIO()
    ds.save_as(data, enforce_file_format=True)
    created = api.post("/api/studies/", files={"files": ("CT.dcm", data.getvalue())})
    assert created.status_code == 201, created.text
    return created.json()["studies"][0]["report"]


def drafting_with_text(report_id: int, claim: int):
    return Report.objects.filter(
        pk=report_id, status=ReportStatus.DRAFTING, draft_claim=claim, draft_text__regex=r".{20,}"
    ).exists()


@pytest.mark.stack_env(**LONG_DRAFT)
def test_a_draft_killed_mid_way_is_redelivered_and_drafted_exactly_once(stack, radiologist):
    token = token_header(radiologist)["HTTP_AUTHORIZATION"].split()[1]
    api = stack.http(token)
    took = []
    for round_ in range(KILLS):
        report = upload(api)
        with connect(report["stream_url"], additional_headers={"Authorization": f"Token {token}"}) as ws:
            follower = DraftFollower(ws)
            follower.receive(timeout=10)
            assert api.post(f"/api/reports/{report['id']}/draft/").status_code == 202
            wait_for(lambda r=report: drafting_with_text(r["id"], 1), what="the draft to be under way")
            killed = kill_pool_child(stack)
            killed_at = time.monotonic()
            final = follower.follow_to_end(timeout=180)
            took.append(time.monotonic() - killed_at)
        stored = Report.objects.get(pk=report["id"])
        assert stored.status == ReportStatus.DRAFTED, (round_, killed, stored.failure_reason)
        assert (stored.attempt, stored.draft_claim) == (1, 2)
        assert ReportVersion.objects.filter(report=stored, source=ReportVersion.AI).count() == 1
        assert final == stored.draft_text and follower.live_text_at_end == stored.draft_text
        assert follower.stream == "1.2"
    seconds = ", ".join(f"{t:.1f}" for t in took)
    print(f"\n{KILLS} kills: each draft redelivered and finished in {seconds} s (max {max(took):.1f})")


@pytest.mark.stack_env(**LONG_DRAFT)
def test_a_draft_whose_worker_dies_every_time_fails_after_a_few_tries(stack, radiologist):
    api = stack.http(token_header(radiologist)["HTTP_AUTHORIZATION"].split()[1])
    report = upload(api)
    assert api.post(f"/api/reports/{report['id']}/draft/").status_code == 202
    for claim in range(1, MAX_DRAFT_CLAIMS + 1):
        wait_for(lambda c=claim: drafting_with_text(report["id"], c), what=f"claim {claim}")
        kill_pool_child(stack)
    failed = wait_for(
        lambda: Report.objects.filter(pk=report["id"], status=ReportStatus.FAILED).first(), what="failure"
    )
    assert f"stopped {MAX_DRAFT_CLAIMS} times" in failed.failure_reason
    assert not ReportVersion.objects.filter(report=failed).exists()
    # The retry button works once the worker is healthy again.
    assert api.post(f"/api/reports/{report['id']}/draft/").status_code == 202


@pytest.mark.stack_env(MEDPORTAL_MAX_NEW_TOKENS=1500, MEDPORTAL_VISIBILITY_TIMEOUT=8)
def test_with_the_threads_pool_a_killed_worker_s_draft_returns_after_the_visibility_timeout(
    stack, radiologist
):
    """The production pool: the whole worker process dies (kill -9), so nothing requeues the
    draft at once; Redis hands it to the next worker once the visibility timeout has passed."""
    stack.processes["worker"].kill()
    stack.processes["worker"].wait()
    stack.start_worker(pool="threads", concurrency=2)
    api = stack.http(token_header(radiologist)["HTTP_AUTHORIZATION"].split()[1])
    report = upload(api)
    assert api.post(f"/api/reports/{report['id']}/draft/").status_code == 202
    wait_for(lambda: drafting_with_text(report["id"], 1), what="the draft to be under way")
    os.kill(stack.processes["worker"].pid, signal.SIGKILL)
    stack.processes["worker"].wait()
    killed_at = time.monotonic()
    stack.start_worker(pool="threads", concurrency=2)
    drafted = wait_for(
        lambda: Report.objects.filter(pk=report["id"], status=ReportStatus.DRAFTED).first(),
        timeout=120,
        what="the redelivered draft",
    )
    assert time.monotonic() - killed_at >= 8 - 1  # not before the visibility timeout
    assert (drafted.attempt, drafted.draft_claim) == (1, 2)
    assert ReportVersion.objects.filter(report=drafted, source=ReportVersion.AI).count() == 1
