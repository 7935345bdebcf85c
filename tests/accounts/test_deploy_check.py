"""Production settings pass Django's deployment checks, warnings included: with the documented
variables, and with docker-compose.yml's environment as an operator following its comments gets."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a-long-random-production-secret-" + "x" * 40 + "-with-variety-1234567890"


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = dict(
        os.environ,
        DEBUG="false",
        MEDPORTAL_HTTPS="true",
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="medportal.hospital.example",
        MEDPORTAL_DATA_DIR=str(tmp_path),
    )
    result = check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def compose_interpolate(value: str, dotenv: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, as `docker compose` resolves them."""

    def one(match: re.Match) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3) or ""
        value = dotenv.get(name, "")
        if operator == ":?":
            assert value, f"compose would refuse to start: {rest}"
        if operator == ":-" and not value:
            return rest
        return value

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def compose_environment(service: str, dotenv: dict[str, str]) -> dict[str, str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    environment = compose["services"][service]["environment"]
    return {key: compose_interpolate(str(value), dotenv) for key, value in environment.items()}


def test_check_deploy_is_clean_with_the_compose_files_production_environment(tmp_path):
    # What docker-compose.yml's header asks to put in .env, and nothing else.
    dotenv = {
        "SECRET_KEY": SECRET,
        "POSTGRES_PASSWORD": "medportal0secret",
        "MEDPORTAL_AUDIT_KEY": "an audit key of the deployment, kept off the host as well",
        "MEDPORTAL_DB_OWNER_PASSWORD": "owner0secret",
        "MEDPORTAL_DB_APP_PASSWORD": "app0secret",
        "ALLOWED_HOSTS": "medportal.example-hospital.org",
        "CSRF_TRUSTED_ORIGINS": "https://medportal.example-hospital.org",
        "HF_TOKEN": "hf_example",
    }
    web = compose_environment("web", dotenv)
    assert web["MEDPORTAL_HTTPS"] == "true"
    ours = {
        k: v for k, v in os.environ.items() if not k.startswith(("MEDPORTAL_", "DATABASE_URL", "REDIS_URL"))
    }
    # The image's data paths (/data) are the container's; here they are a temporary folder.
    env = (
        ours | web | {"MEDPORTAL_DATA_DIR": str(tmp_path), "MEDPORTAL_IMAGE_STORE": str(tmp_path / "images")}
    )
    result = check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_secure_cookies_is_refused_with_the_variable_to_use(tmp_path):
    """Earlier docs named SECURE_COOKIES, which nothing read: start-up says what to set instead."""
    env = dict(os.environ, SECURE_COOKIES="true", MEDPORTAL_DATA_DIR=str(tmp_path))
    result = check_deploy(env)
    assert result.returncode != 0
    assert "SECURE_COOKIES is not a MedPortal setting: set MEDPORTAL_HTTPS=true" in result.stderr
