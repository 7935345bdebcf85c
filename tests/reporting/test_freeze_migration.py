"""Reports signed before signatures were frozen get their snapshot when the database is migrated
(from the rows as they are then), each vouched for by an audit event: audit_verify passes, and
the exports render from it. On the embedded SQLite, migrated the way ``bin/run`` does."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.reporting.test_sqlite_guards import _insert

ROOT = Path(__file__).resolve().parents[2]


def manage(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "MEDPORTAL_AUDIT"))}
    env["MEDPORTAL_DATA_DIR"] = str(data)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_reports_signed_before_the_upgrade_are_frozen_and_vouched_for(tmp_path):
    data = tmp_path / "data"
    assert manage(data, "migrate", "reporting", "0009", "-v0").returncode == 0
    db = sqlite3.connect(data / "db.sqlite3", isolation_level=None)
    _insert(
        db,
        "auth_user",
        id=1,
        username="rita",
        first_name="Rita",
        last_name="Hayworth",
        date_joined="2026-01-01",
    )
    _insert(db, "imaging_patient", id=1, patient_id="MRN-1", name="Doe^Jane", sex="F")
    _insert(
        db,
        "imaging_study",
        id=1,
        patient_id=1,
        study_uid="1.2.3",
        indication="Cough.",
        received_at="2026-01-01",
    )
    report = _insert(
        db,
        "reporting_report",
        study_id=1,
        status="signed",
        findings="Clear lungs.",
        impression="Normal.",
        signed_by_id=1,
        signed_at="2026-11-01 10:00:00",
        generation_params="{}",
        preprocessing="{}",
    )
    migrated = manage(data, "migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr

    content, backfilled = db.execute(
        "SELECT content, backfilled FROM reporting_signedcontent WHERE report_id = ?", [report]
    ).fetchone()
    frozen = json.loads(content)
    assert backfilled == 1
    assert (frozen["patient"]["name"], frozen["study"]["indication"], frozen["report"]["findings"]) == (
        "Doe^Jane",
        "Cough.",
        "Clear lungs.",
    )
    assert frozen["signer"]["username"] == "rita" and frozen["signed_at"].startswith("2026-11-01T10:00:00")
    verified = manage(data, "audit_verify")
    assert verified.returncode == 0, verified.stderr
    assert "Signed reports intact: 1 frozen signatures" in verified.stdout
