"""The embedded default database (SQLite) guards signed reports as PostgreSQL does.

SQLite loses a table's triggers when a migration rebuilds it; this migrates a fresh SQLite
database the way `bin/run` does and tries the forbidden changes with plain SQL."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _insert(db: sqlite3.Connection, table: str, **values) -> int:
    """A row with ``values``; every other NOT NULL column gets an empty value of its type."""
    for _, name, type_, not_null, _, _ in db.execute(f"PRAGMA table_info({table})"):
        if name == "id" or name in values or not not_null:
            continue
        type_ = type_.lower()
        values[name] = "" if "char" in type_ or "text" in type_ else 0
    cursor = db.execute(
        f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
        list(values.values()),
    )
    return cursor.lastrowid


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory) -> sqlite3.Connection:
    data = tmp_path_factory.mktemp("embedded")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["MEDPORTAL_DATA_DIR"] = str(data)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    db = sqlite3.connect(data / "db.sqlite3", isolation_level=None)
    _insert(db, "auth_user", id=1, username="rita", date_joined="2026-01-01")
    _insert(db, "imaging_patient", id=1, patient_id="MRN-1")
    return db


def _insert_signed_report(db: sqlite3.Connection) -> int:
    study = _insert(db, "imaging_study", patient_id=1, study_uid=f"1.2.{db.total_changes}")
    return _insert(
        db,
        "reporting_report",
        study_id=study,
        status="signed",
        findings="Clear.",
        generation_params="{}",
        preprocessing="{}",
    )


def test_a_signed_report_in_the_embedded_database_refuses_changes(sqlite_db):
    report = _insert_signed_report(sqlite_db)
    for statement in [
        "UPDATE reporting_report SET findings = 'forged' WHERE id = ?",
        "UPDATE reporting_report SET status = 'amended', impression = 'forged' WHERE id = ?",
        "UPDATE reporting_report SET status = 'drafted' WHERE id = ?",
        "DELETE FROM reporting_report WHERE id = ?",
    ]:
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            sqlite_db.execute(statement, [report])
    # The one change an addendum makes.
    sqlite_db.execute("UPDATE reporting_report SET status = 'amended' WHERE id = ?", [report])
    assert sqlite_db.execute(
        "SELECT status, findings FROM reporting_report WHERE id = ?", [report]
    ).fetchone() == (
        "amended",
        "Clear.",
    )
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        sqlite_db.execute("UPDATE reporting_report SET findings = 'forged' WHERE id = ?", [report])


def test_versions_and_addenda_in_the_embedded_database_are_immutable(sqlite_db):
    report = _insert_signed_report(sqlite_db)
    _insert(sqlite_db, "reporting_reportversion", report_id=report, number=1, source="ai", findings="a")
    _insert(sqlite_db, "reporting_addendum", report_id=report, number=1, text="More.", signed_by_id=1)
    for statement in [
        "UPDATE reporting_reportversion SET findings = 'forged' WHERE report_id = ?",
        "DELETE FROM reporting_reportversion WHERE report_id = ?",
        "UPDATE reporting_addendum SET text = 'forged' WHERE report_id = ?",
        "DELETE FROM reporting_addendum WHERE report_id = ?",
    ]:
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            sqlite_db.execute(statement, [report])


def test_frozen_signatures_in_the_embedded_database_are_immutable(sqlite_db):
    report = _insert_signed_report(sqlite_db)
    _insert(sqlite_db, "reporting_signedcontent", report_id=report, content="{}", sha256="0" * 64)
    for statement in [
        "UPDATE reporting_signedcontent SET content = '{\"forged\": 1}' WHERE report_id = ?",
        "DELETE FROM reporting_signedcontent WHERE report_id = ?",
    ]:
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            sqlite_db.execute(statement, [report])


def test_the_embedded_audit_trail_refuses_changes(sqlite_db):
    _insert(sqlite_db, "audit_auditevent", seq=1, previous_hash="0" * 64, hash="1" * 64, detail="{}")
    for statement in ["UPDATE audit_auditevent SET username = 'eve'", "DELETE FROM audit_auditevent"]:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            sqlite_db.execute(statement)
