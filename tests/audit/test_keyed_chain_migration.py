"""An installation with an audit trail from before the keyed chain: after migrating, the old rows
(plain SHA-256) are numbered and still verify, new rows are keyed and chain to them, and the
SQLite guards are back. On the embedded SQLite, migrated the way ``bin/run`` does."""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from medportal.audit.models import AuditEvent
from medportal.audit.services import GENESIS_HASH, chain_hash

ROOT = Path(__file__).resolve().parents[2]

WRITE_ONE = """
from medportal.audit.models import Action, EventType
from medportal.audit.services import audit_record
audit_record(
    event_type=EventType.PATIENT_RECORD, action=Action.READ, description="Study viewed", username="rita"
)
"""


def manage(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "MEDPORTAL_AUDIT"))}
    env["MEDPORTAL_DATA_DIR"] = str(data)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def legacy_rows(db: sqlite3.Connection, count: int) -> None:
    """Rows as audit 0002 wrote them: id order, plain SHA-256 chain, no seq."""
    previous = GENESIS_HASH
    for n in range(count):
        event = AuditEvent(
            occurred_at=datetime.datetime(2026, 11, 1, 12, n, tzinfo=datetime.UTC),
            event_type="110110",
            action="R",
            outcome=0,
            description="Study viewed",
            username=f"user{n}",
            patient_id="P-1",
            detail={"n": n},
            keyed=False,
        )
        digest = chain_hash(previous, event)
        db.execute(
            """INSERT INTO audit_auditevent (occurred_at, event_type, action, outcome, description,
               username, role, is_requestor, patient_id, study_uid, accession_number, object_type,
               object_id, detail, previous_hash, hash)
               VALUES (?, '110110', 'R', 0, 'Study viewed', ?, '', 1, 'P-1', '', '', '', '', ?, ?, ?)""",
            [
                event.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
                event.username,
                json.dumps(event.detail),
                previous,
                digest,
            ],
        )
        previous = digest


def test_an_old_trail_stays_verifiable_and_new_events_are_keyed_after_it(tmp_path):
    data = tmp_path / "data"
    assert manage(data, "migrate", "audit", "0002", "-v0").returncode == 0
    db = sqlite3.connect(data / "db.sqlite3", isolation_level=None)
    legacy_rows(db, 5)

    migrated = manage(data, "migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    assert manage(data, "shell", "-c", WRITE_ONE).returncode == 0
    rows = db.execute("SELECT seq, keyed, username FROM audit_auditevent ORDER BY seq").fetchall()
    assert [(seq, keyed) for seq, keyed, _ in rows[:6]] == [(1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 1)]
    verified = manage(data, "audit_verify")
    assert verified.returncode == 0, verified.stderr
    assert f"{len(rows)} events verified" in verified.stdout

    # The guards are back after the table was rebuilt.
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit_auditevent SET username = 'eve' WHERE seq = 2")
    # An old row edited (the guards lifted) is found at its seq, key or no key.
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit_auditevent SET username = 'eve' WHERE seq = 2")
    broken = manage(data, "audit_verify")
    assert broken.returncode != 0
    assert "broken at seq 2" in broken.stderr and "the row was edited" in broken.stderr
