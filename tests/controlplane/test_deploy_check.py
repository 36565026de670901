"""`manage.py check --deploy` passes with .env.example's production values, and fails when one is weakened."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = [line.partition("=") for line in lines if line.strip() and not line.startswith("#")]
    return {name: value for name, _, value in pairs}


def deployed_environment(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """What an operator following .env.example runs with: its values, the placeholders replaced."""
    values = env_example()
    for name, value in values.items():
        if value.startswith("change-me"):
            values[name] = secrets.token_urlsafe(50)
    # Compose adds the service addresses (docker-compose.yml's environment), not .env.
    values.update(EXECUTOR_URL="http://executor:8100", VAR_DIR=str(tmp_path))
    values.update(overrides)
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **values}


def check_deploy(environment: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


def test_the_documented_production_environment_passes_check_deploy(tmp_path):
    result = check_deploy(deployed_environment(tmp_path))
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("weakened", "expected"),
    [
        ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
        ({"SECURE_HSTS_INCLUDE_SUBDOMAINS": "false"}, "security.W005"),
        ({"SECURE_SSL_REDIRECT": "false"}, "security.W008"),
        ({"SECURE_COOKIES": "false"}, "security.W012"),
        ({"DEBUG": "true"}, "security.W018"),
        ({"SECRET_KEY": "short"}, "security.W009"),
    ],
)
def test_a_weakened_setting_fails_check_deploy(tmp_path, weakened, expected):
    result = check_deploy(deployed_environment(tmp_path, **weakened))
    assert result.returncode != 0
    assert expected in result.stderr


def test_a_placeholder_secret_left_in_place_fails_check_deploy(tmp_path):
    placeholder = env_example()["EXECUTOR_TOKEN"]
    result = check_deploy(deployed_environment(tmp_path, EXECUTOR_TOKEN=placeholder))
    assert result.returncode != 0
    assert "controlplane.E050" in result.stderr
    assert "EXECUTOR_TOKEN is still the placeholder" in result.stderr


def test_health_probes_over_plain_http_are_not_redirected(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/me/").status_code == 301


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SECURE_HSTS_SECONDS", "a year"), ("SECURE_HSTS_SECONDS", "-1"), ("SECURE_SSL_REDIRECT", "sometimes")],
)
def test_malformed_https_settings_stop_start_up(tmp_path, variable, value):
    result = check_deploy(deployed_environment(tmp_path, **{variable: value}))
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {variable}" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [("REDIS_URL", "http://:hunter2-pw@redis:6379/0"), ("DATABASE_URL", "mysql://cp:hunter2-pw@db/cp")],
)
def test_a_refused_url_is_reported_without_its_password(tmp_path, variable, value):
    result = check_deploy(deployed_environment(tmp_path, **{variable: value}))
    assert f"ImproperlyConfigured: {variable}" in result.stderr
    assert "hunter2-pw" not in result.stderr
