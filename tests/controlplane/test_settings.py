"""Settings fail loudly at start-up, naming the variable, instead of running with a wrong value."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "from django.db import connection; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], 'debug': s.DEBUG, "
    "'key': s.SECRET_KEY}))"
)


def start(**overrides: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in overrides and not k.endswith("_FILE")}
    environ.update({k: v for k, v in overrides.items() if v is not None})
    environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_refused(result: subprocess.CompletedProcess, variable: str) -> None:
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url", "postgres://127.0.0.1:5432/"])
def test_malformed_database_url_stops_startup_naming_the_variable(url):
    assert_refused(start(DATABASE_URL=url), "DATABASE_URL")


def test_missing_secret_key_with_debug_off_stops_startup():
    environ = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    environ.update(DJANGO_SETTINGS_MODULE="controlplane.settings", DEBUG="false")
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_refused(result, "SECRET_KEY")


def test_secret_key_is_read_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-mounted-file\n")
    environ = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    environ.update(DJANGO_SETTINGS_MODULE="controlplane.settings", SECRET_KEY_FILE=str(secret))
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert '"key": "from-a-mounted-file"' in result.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_CONN_MAX_AGE", "ten"),
        ("LOG_FORMAT", "xml"),
        ("REDIS_URL", "http://x"),
    ],
)
def test_malformed_values_stop_startup(variable, value):
    assert_refused(start(**{variable: value}), variable)


def test_sqlite_runs_with_immediate_transactions_and_wal(tmp_path):
    probe = (
        "import django; django.setup(); from django.db import connection; "
        "c = connection.cursor(); c.execute('PRAGMA journal_mode'); "
        "print(c.fetchone()[0], connection.transaction_mode)"
    )
    environ = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3",
        DJANGO_SETTINGS_MODULE="controlplane.settings",
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "IMMEDIATE"]
