"""Every environment variable that the README, docker-compose.yml or the Dockerfile tells an
operator to set is read by something: MedPortal's settings, launcher, bin scripts or inference
worker, the Dockerfile's own build steps, or a named third party (Python, pip, Hugging Face).
A documented variable that nothing reads is a setting an operator believes in and does not have
(as SECURE_COOKIES was: named by the README and compose, read by nothing)."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")
APP_IMAGE = "medportal:latest"


@cache
def app_sources() -> dict[Path, str]:
    files = [*ROOT.glob("medportal/**/*.py"), *ROOT.glob("inference_worker/**/*.py"), ROOT / "manage.py"]
    files += [path for path in (ROOT / "bin").iterdir() if path.is_file()]
    return {path: path.read_text() for path in files}


def read_by_app(name: str) -> bool:
    """A Python string literal that is exactly the name (os.environ.get("X"), env_int("X", ...),
    a table of names passed to env_str), or $X / ${X} in a bin script."""
    literal = re.compile(rf"""["']{name}["']""")
    shell = re.compile(rf"\$\{{?{name}\b")
    for path, text in app_sources().items():
        if path.suffix == ".py" and literal.search(text):
            return True
        if path.parent.name == "bin" and shell.search(text):
            return True
    if name.endswith("_FILE"):
        # settings.env_str reads <name>_FILE for every name it reads (Docker secrets).
        settings = (ROOT / "medportal" / "settings.py").read_text()
        base = name.removesuffix("_FILE")
        return 'f"{name}_FILE"' in settings and re.search(rf"""["']{base}["']""", settings) is not None
    return False


@cache
def python_help_env() -> str:
    return subprocess.run([sys.executable, "--help-env"], capture_output=True, text=True, check=True).stdout


def _package_source(module: str) -> str:
    import importlib

    return Path(importlib.import_module(module).__file__).read_text()


# Variables another program reads, and how the test knows that it does.
THIRD_PARTY = {
    "PYTHONUNBUFFERED": lambda: "PYTHONUNBUFFERED" in python_help_env(),
    "PYTHONDONTWRITEBYTECODE": lambda: "PYTHONDONTWRITEBYTECODE" in python_help_env(),
    "PYTHONPATH": lambda: "PYTHONPATH" in python_help_env(),
    # pip reads PIP_<OPTION> for each of its options.
    "PIP_NO_CACHE_DIR": lambda: '"--no-cache-dir"' in _package_source("pip._internal.cli.cmdoptions"),
    "PIP_DISABLE_PIP_VERSION_CHECK": lambda: (
        '"--disable-pip-version-check"' in _package_source("pip._internal.cli.cmdoptions")
    ),
    "HF_HOME": lambda: '"HF_HOME"' in _package_source("huggingface_hub.constants"),
    "HF_TOKEN": lambda: '"HF_TOKEN"' in _package_source("huggingface_hub.constants"),
}


def is_read(name: str) -> bool:
    return read_by_app(name) or (name in THIRD_PARTY and THIRD_PARTY[name]())


def readme_table_variables() -> set[str]:
    """The first column of the README's variable tables (Configuration, the S3 image store)."""
    names: set[str] = set()
    in_table = False
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("| variable |") or line.strip().startswith("| variable |"):
            in_table = True
            continue
        if in_table and not line.strip().startswith("|"):
            in_table = False
        if not in_table or set(line.strip()) <= set("|- "):
            continue
        first = line.strip().split("|")[1]
        previous = None
        for token in re.findall(r"`([^`]+)`", first):
            token = token.split("=")[0]
            if token.startswith("_") and previous:  # "`X` (or `_FILE`)"
                names.add(previous + token)
            elif NAME.match(token):
                names.add(previous := token)
    return names


def readme_medportal_variables() -> set[str]:
    """Every MEDPORTAL_* name anywhere in the README (prose included)."""
    return set(re.findall(r"\bMEDPORTAL_[A-Z0-9_]*[A-Z0-9]\b", (ROOT / "README.md").read_text()))


@cache
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_app_environment() -> set[str]:
    """The environment keys of every service that runs MedPortal's image."""
    return {
        key
        for service in compose()["services"].values()
        if service.get("image") == APP_IMAGE
        for key in service.get("environment", {})
    }


def compose_commands() -> str:
    return "\n".join(str(service.get("command", "")) for service in compose()["services"].values())


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for line in joined.splitlines()
        if (parts := line.strip().split(None, 1))
    ]


def dockerfile_env() -> set[str]:
    return {
        name
        for keyword, rest in dockerfile_instructions()
        if keyword == "ENV"
        for name in re.findall(r"(\w+)=", rest)
    }


def dockerfile_args() -> set[str]:
    return {rest.split("=")[0].strip() for keyword, rest in dockerfile_instructions() if keyword == "ARG"}


def used_by_dockerfile_build(name: str) -> bool:
    """A build ARG that a RUN (or CMD) uses: ${X}, $X or os.environ['X'] in its command."""
    steps = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword in ("RUN", "CMD"))
    return re.search(rf"\$\{{?{name}\b|['\"]{name}['\"]", steps) is not None


def test_the_readme_tables_name_only_variables_that_are_read():
    names = readme_table_variables()
    assert not sorted(n for n in names if not is_read(n)), "README variables nothing reads"
    assert {"DATABASE_URL", "MEDPORTAL_HTTPS", "SECRET_KEY_FILE", "MEDPORTAL_S3_BUCKET"} <= names


def test_every_medportal_variable_the_readme_names_is_read_by_the_app_the_build_or_a_test():
    """Prose too: test knobs (MEDPORTAL_FUZZ_CASES) are read by tests, build options by the
    Dockerfile, compose's worker queues by its command."""
    tests = "\n".join(path.read_text() for path in ROOT.glob("tests/**/*.py"))
    unread = [
        name
        for name in sorted(readme_medportal_variables())
        if not (
            is_read(name)
            or re.search(rf"""["']{name}["']""", tests)
            or (name in dockerfile_args() and used_by_dockerfile_build(name))
            or re.search(rf"\$\{{{name}\b", compose_commands())
        )
    ]
    assert not unread, "variables the README names that nothing reads"


def test_compose_sets_only_variables_that_medportal_reads():
    keys = compose_app_environment()
    assert not sorted(k for k in keys if not is_read(k)), "compose environment nothing reads"
    assert {"SECRET_KEY", "MEDPORTAL_HTTPS", "DATABASE_URL"} <= keys


def test_compose_build_args_are_arguments_the_dockerfile_uses():
    args = set(compose()["x-app"]["build"]["args"])
    assert args, "compose passes build args"
    assert not sorted(a for a in args if a not in dockerfile_args() or not used_by_dockerfile_build(a))


@pytest.mark.parametrize("name", sorted(dockerfile_env()))
def test_each_dockerfile_env_is_read(name):
    assert is_read(name), f"the Dockerfile sets {name}, which nothing reads"


def test_the_checker_spots_a_variable_that_nothing_reads():
    assert not is_read("SECURE_COOKIES_NOT_A_SETTING")
    assert is_read("MEDPORTAL_HTTPS") and is_read("MEDPORTAL_PACS_STOW_TOKEN_FILE")
