"""docker-compose.yml connects the application as a role that owns no table, migrates as the owner,
and keeps the audit key and anchors outside the database (docker itself is not available here)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "dimse", "worker", "interfaces")


def services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_the_application_connects_as_its_own_role_and_migrations_run_as_the_owner():
    compose = services()
    for name in APP_SERVICES:
        env = compose[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://medportal_app:"), name
        assert env["MEDPORTAL_AUDIT_KEY"].startswith("${MEDPORTAL_AUDIT_KEY:?"), name
        assert compose[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    migrate = compose["migrate"]
    assert migrate["environment"]["DATABASE_URL"].startswith("postgres://medportal_owner:")
    steps = [step.strip() for step in migrate["command"].removeprefix('sh -c "').rstrip('"').split("&&")]
    assert steps[:2] == [
        "python manage.py migrate --noinput",
        "python manage.py medportal_db_grant medportal_app",
    ]
    assert "migrate" not in compose["web"]["command"]


def test_the_database_creates_both_roles_and_the_app_role_owns_nothing():
    db = services()["db"]
    assert "./docker/postgres-init:/docker-entrypoint-initdb.d:ro" in db["volumes"]
    script = (ROOT / "docker/postgres-init/10-roles.sh").read_text()
    assert "CREATE ROLE medportal_owner LOGIN" in script and "CREATE ROLE medportal_app LOGIN" in script
    assert "ALTER SCHEMA public OWNER TO medportal_owner" in script
    assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC" in script  # the app role cannot create tables


def test_only_the_interfaces_worker_writes_the_audit_anchors():
    compose = services()
    assert "audit-anchors:/data/audit-anchors" in compose["interfaces"]["volumes"]
    assert "audit-anchors:/data/audit-anchors:ro" in compose["web"]["volumes"]
    assert " -B " in compose["interfaces"]["command"]
    for name in ("worker", "dimse"):
        assert not any("audit-anchors" in v for v in compose[name].get("volumes", []))
