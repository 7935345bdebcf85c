"""One study from upload to a signed report, through the real server, worker, Redis and model."""

from __future__ import annotations

import json

import pytest
from django.db import DatabaseError, connection, transaction
from websockets.sync.client import connect

from medportal.audit.models import AuditEvent
from medportal.reporting.models import Report, ReportStatus
from tests.conftest import PASSWORD, token_header, with_body_part
from tests.stream_client import DraftFollower

pytestmark = [pytest.mark.e2e]


def collect_stream(ws, timeout: float = 120) -> tuple[list[dict], dict]:
    """Chunks until the snapshot that says the draft ended; returns (chunks, final snapshot)."""
    chunks = []
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        if message["type"] == "chunk":
            chunks.append(message)
        elif message["type"] == "snapshot" and message["status"] not in ("queued", "drafting"):
            return chunks, message


def assemble(chunks: list[dict]) -> str:
    text = ""
    for chunk in chunks:
        assert chunk["offset"] == len(text), "a chunk went missing or came out of order"
        text += chunk["text"]
    return text


def test_a_study_goes_from_upload_to_signed_report(stack, radiologist):
    token = token_header(radiologist)["HTTP_AUTHORIZATION"].split()[1]
    api = stack.http(token)

    created = api.post(
        "/api/studies/",
        files={"files": ("CT_small.dcm", with_body_part("CT_small.dcm", "HEAD"), "application/dicom")},
        data={"indication": "Cough for three weeks."},
    )
    assert created.status_code == 201, created.text
    report = created.json()["studies"][0]["report"]
    assert report["status"] == "received"
    assert report["stream_url"] == f"{stack.ws_url}/ws/reports/{report['id']}/"

    with connect(report["stream_url"], additional_headers={"Authorization": f"Token {token}"}) as ws:
        first = json.loads(ws.recv(timeout=10))
        assert first["type"] == "snapshot" and first["status"] == "received"
        requested = api.post(f"/api/reports/{report['id']}/draft/")
        assert requested.status_code == 202, requested.text
        chunks, final = collect_stream(ws)

    assert final["status"] == "drafted", final
    assert len(chunks) > 1, "the draft should arrive in several chunks, not at once"
    assert [c["seq"] for c in chunks] == list(range(1, len(chunks) + 1))
    streamed = assemble(chunks)
    stored = Report.objects.get(pk=report["id"])
    assert streamed == stored.draft_text == final["text"]
    assert stored.draft_text.strip()

    read = api.get(f"/api/reports/{report['id']}/").json()
    assert read["status"] == "drafted"
    assert read["draft_text"] == stored.draft_text
    provenance = read["provenance"]
    assert provenance["model_id"] == "tiny"
    assert provenance["model_revision"].startswith("sha256:")
    assert "You are an expert radiologist." in provenance["prompt"]
    assert "Cough for three weeks." in provenance["prompt"]
    assert provenance["generation_params"]["do_sample"] is False
    assert provenance["preprocessing"]["method"] == "ct-hu-3-windows"
    assert provenance["time_to_first_token_ms"] > 0 and provenance["tokens_per_second"] > 0

    edited = api.put(
        f"/api/reports/{report['id']}/",
        json={"findings": "No acute abnormality.", "impression": "Normal CT.", "version": read["version"]},
    )
    assert edited.status_code == 200, edited.text
    signed = api.post(
        f"/api/reports/{report['id']}/sign/", json={"password": PASSWORD, "version": edited.json()["version"]}
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "signed" and signed.json()["signed_by"] == "rita"

    # Immutable through the API ...
    assert (
        api.put(
            f"/api/reports/{report['id']}/",
            json={"findings": "changed", "impression": "", "version": signed.json()["version"]},
        ).status_code
        == 409
    )
    assert api.post(f"/api/reports/{report['id']}/draft/").status_code == 409
    # ... and in the database itself.
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE reporting_report SET findings = 'tampered' WHERE id = %s", [report["id"]])
    final_row = Report.objects.get(pk=report["id"])
    assert (final_row.status, final_row.findings) == (ReportStatus.SIGNED, "No acute abnormality.")

    # The worker's start is on the record too (application activity, DCM 110100).
    assert AuditEvent.objects.filter(event_type="110100", description="Inference worker started").exists()
    described = set(
        AuditEvent.objects.filter(study_uid=created.json()["studies"][0]["study_uid"]).values_list(
            "description", flat=True
        )
    )
    assert {
        "Instances received",
        "Report stream opened",
        "AI draft requested",
        "AI draft written",
        "Report edited",
        "Report signed",
    } <= described


def test_reconnecting_mid_draft_shows_the_text_so_far_and_keeps_streaming(stack, radiologist):
    token = token_header(radiologist)["HTTP_AUTHORIZATION"].split()[1]
    api = stack.http(token)
    report = api.post(
        "/api/studies/", files={"files": ("MR_small.dcm", with_body_part("MR_small.dcm", "HEAD"))}
    ).json()["studies"][0]["report"]
    headers = {"Authorization": f"Token {token}"}
    with connect(report["stream_url"], additional_headers=headers) as ws:
        follower = DraftFollower(ws)
        follower.receive(timeout=10)
        api.post(f"/api/reports/{report['id']}/draft/")
        # Leave after a few chunks, as a browser does on reload.
        while len(follower.chunks) < 5:
            follower.receive(timeout=60)
            assert follower.status != "drafted", "the draft ended before the reload"
        before_reload = follower.text
    with connect(report["stream_url"], additional_headers=headers) as ws:
        follower = DraftFollower(ws)
        snapshot = follower.receive(timeout=10)
        assert snapshot["type"] == "snapshot"
        assert snapshot["status"] == "drafting", "the draft should still be running after the reload"
        final = follower.follow_to_end()
    stored = Report.objects.get(pk=report["id"]).draft_text
    assert final == stored
    assert stored.startswith(before_reload) and len(stored) > len(before_reload)
    # What the client held live, before the closing snapshot, was already the whole text: no gap left.
    assert follower.live_text_at_end == stored
