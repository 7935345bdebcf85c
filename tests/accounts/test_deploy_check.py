"""Production settings pass Django's deployment checks, warnings included."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = dict(
        os.environ,
        DEBUG="false",
        MEDPORTAL_HTTPS="true",
        SECRET_KEY="a-long-random-production-secret-" + "x" * 40 + "-with-variety-1234567890",
        ALLOWED_HOSTS="medportal.hospital.example",
        MEDPORTAL_DATA_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
