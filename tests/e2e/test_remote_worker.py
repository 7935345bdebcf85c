"""A worker as on another host: its own working directory, an empty data folder and image store,
and the pixels fetched from the web server's WADO-RS with a service account's token."""

from __future__ import annotations

import time
from io import StringIO
from pathlib import Path

import psutil
import pytest
from django.core.management import call_command

from medportal.audit.models import AuditEvent, EventType
from medportal.reporting.models import Report, ReportStatus
from tests.conftest import token_header, with_body_part
from tests.e2e.conftest import stop

pytestmark = [pytest.mark.e2e]


def service_token(name: str) -> str:
    out = StringIO()
    call_command("medportal_service_token", "--name", name, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def start_remote_worker(stack, tmp_path: Path, token: str) -> Path:
    """Stops the stack's worker (it shares the web's image store) and starts one that shares
    no folder with the web. Returns its data folder."""
    stop(stack.processes["worker"])
    cwd, data = tmp_path / "worker-cwd", tmp_path / "worker-data"
    cwd.mkdir()
    data.mkdir()
    worker = stack.start_worker(
        cwd=cwd,
        env={
            "MEDPORTAL_DATA_DIR": str(data),
            "MEDPORTAL_IMAGE_STORE": str(data / "images"),
            "MEDPORTAL_PIXEL_SOURCE": "wado",
            "MEDPORTAL_PORTAL_URL": stack.base_url,
            "MEDPORTAL_SERVICE_TOKEN": token,
        },
    )
    assert Path(psutil.Process(worker.pid).cwd()) == cwd
    return data


def upload_and_wait(stack, user, timeout: float = 180) -> Report:
    """Uploads CT_small through the web's API with a draft requested; the report once it has ended."""
    api = stack.http(token_header(user)["HTTP_AUTHORIZATION"].split()[1])
    created = api.post(
        "/api/studies/",
        files={"files": ("CT_small.dcm", with_body_part("CT_small.dcm", "HEAD"), "application/dicom")},
        data={"auto_draft": "true"},
    )
    assert created.status_code == 201, created.text
    report_id = created.json()["studies"][0]["report"]["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = Report.objects.get(pk=report_id)
        if report.status not in (ReportStatus.RECEIVED, ReportStatus.QUEUED, ReportStatus.DRAFTING):
            return report
        time.sleep(0.5)
    pytest.fail(f"report {report_id} still {report.status} after {timeout} s")


def test_a_worker_without_the_web_s_disk_drafts_from_pixels_fetched_over_wado_rs(
    stack, tmp_path, technologist
):
    worker_data = start_remote_worker(stack, tmp_path, service_token("worker-gpu1"))

    report = upload_and_wait(stack, technologist)

    assert report.status == ReportStatus.DRAFTED, report.failure_reason
    assert report.draft_text.strip()
    instance = report.study.series.get().instances.get()
    assert report.preprocessing["pixel_source"] == "wado"
    assert report.preprocessing["sop_instance_uid"] == instance.sop_instance_uid
    # The file is in the web's image store and nowhere in the worker's.
    assert (Path(stack.env["MEDPORTAL_IMAGE_STORE"]) / instance.storage_name).exists()
    assert not [p for p in worker_data.rglob("*") if instance.sha256 in p.name]
    fetched = AuditEvent.objects.filter(
        event_type=EventType.INSTANCES_ACCESSED, username="worker-gpu1", study_uid=report.study.study_uid
    )
    assert fetched.count() == 1
    event = fetched.get()
    assert event.role == "service" and event.network_address == "127.0.0.1"
    assert event.detail["service"] == "WADO-RS" and event.detail["resource"] == "instance retrieved"
    assert event.detail["sop_instance_uids"] == [instance.sop_instance_uid]


def test_a_wrong_service_token_fails_the_draft_with_the_reason(stack, tmp_path, technologist):
    start_remote_worker(stack, tmp_path, "not-the-token")

    report = upload_and_wait(stack, technologist, timeout=90)  # not a hang

    assert report.status == ReportStatus.FAILED
    assert f"the portal at {stack.base_url} refused the worker's service token (401)" in report.failure_reason
    assert "MEDPORTAL_SERVICE_TOKEN" in report.failure_reason
    api = stack.http(token_header(technologist)["HTTP_AUTHORIZATION"].split()[1])
    shown = api.get(f"/api/reports/{report.pk}/").json()
    assert shown["status"] == "failed" and "refused the worker's service token" in shown["failure_reason"]
