"""System checks fire for the process layouts they are meant for, and stay quiet otherwise."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from controlplane import checks

ROOT = Path(__file__).resolve().parents[2]
GRIP = "django_grip.GripMiddleware"
SQLITE = "django.db.backends.sqlite3"
POSTGRES = "django.db.backends.postgresql"


@pytest.fixture
def running(monkeypatch):
    def as_command(*argv: str) -> None:
        monkeypatch.setattr(sys, "argv", ["manage.py", *argv])

    return as_command


@pytest.fixture
def no_live_bus(settings):
    if hasattr(settings, "EVENTSTREAM_REDIS"):
        del settings.EVENTSTREAM_REDIS
    for name in ("GRIP_URL", "GRIP_PROXIES"):
        if hasattr(settings, name):
            delattr(settings, name)
    return settings


@pytest.fixture
def database(monkeypatch):
    def use(engine: str, name: str) -> None:
        monkeypatch.setattr(checks, "default_database", lambda: {"ENGINE": engine, "NAME": name})

    return use


def ids(messages) -> list[str]:
    return [message.id for message in messages]


@pytest.mark.parametrize("command", ["runworker", "reconcile"])
def test_separate_worker_without_redis_or_grip_is_warned(running, no_live_bus, command):
    running(command, "--concurrency", "4")
    messages = checks.check_live_delivery()
    assert ids(messages) == ["controlplane.W001"]
    assert command in messages[0].msg
    assert "reconnect" in messages[0].hint


def test_separate_worker_with_redis_is_not_warned(running, settings):
    running("runworker")
    settings.EVENTSTREAM_REDIS = {"host": "127.0.0.1", "port": 6379, "db": 13}
    assert checks.check_live_delivery() == []


def test_separate_worker_with_grip_is_not_warned(running, no_live_bus):
    running("runworker")
    no_live_bus.GRIP_URL = "http://pushpin:5561"
    assert checks.check_live_delivery() == []


@pytest.mark.parametrize(
    "argv", [["standalone"], ["migrate", "--noinput"], ["check"], ["controlplane.asgi:application"], []]
)
def test_processes_that_serve_their_own_listeners_are_not_warned(running, no_live_bus, argv):
    running(*argv)
    assert checks.check_live_delivery() == []


def test_grip_without_its_middleware_is_an_error(settings):
    settings.GRIP_URL = "http://pushpin:5561"
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != GRIP]
    assert ids(checks.check_grip_middleware()) == ["controlplane.E001"]


def test_grip_proxies_without_the_middleware_is_an_error_too(no_live_bus):
    no_live_bus.GRIP_PROXIES = [{"control_uri": "http://pushpin:5561"}]
    assert ids(checks.check_grip_middleware()) == ["controlplane.E001"]


def test_grip_with_its_middleware_and_no_grip_at_all_pass(settings, no_live_bus):
    assert checks.check_grip_middleware() == []
    settings.GRIP_URL = "http://pushpin:5561"
    settings.MIDDLEWARE = [GRIP, *settings.MIDDLEWARE]
    assert checks.check_grip_middleware() == []


def test_a_connection_pool_on_sqlite_is_an_error(settings, database):
    database(SQLITE, "/var/lib/cp/db.sqlite3")
    settings.DATABASE_POOL_SIZE = 20
    assert ids(checks.check_pool_needs_postgresql()) == ["controlplane.E002"]


@pytest.mark.parametrize(("engine", "pool"), [(POSTGRES, 20), (SQLITE, 0), (POSTGRES, 0)])
def test_a_pool_on_postgresql_or_no_pool_passes(settings, database, engine, pool):
    database(engine, "cp")
    settings.DATABASE_POOL_SIZE = pool
    assert checks.check_pool_needs_postgresql() == []


@pytest.mark.parametrize("name", [":memory:", "file:cp?mode=memory&cache=shared"])
def test_a_separate_worker_on_an_in_memory_database_is_an_error(running, database, name):
    running("runworker")
    database(SQLITE, name)
    assert ids(checks.check_shared_database()) == ["controlplane.E003"]


@pytest.mark.parametrize(
    ("argv", "engine", "name"),
    [
        (["runworker"], SQLITE, "/var/lib/cp/db.sqlite3"),  # a file is shared between processes
        (["runworker"], POSTGRES, "cp"),
        (["standalone"], SQLITE, "/tmp/demo.sqlite3"),
    ],
)
def test_shared_databases_and_single_processes_pass(running, database, argv, engine, name):
    running(*argv)
    database(engine, name)
    assert checks.check_shared_database() == []


def test_standalone_on_a_private_memory_database_is_an_error(running, database):
    running("standalone")
    database(SQLITE, ":memory:")
    assert ids(checks.check_shared_database()) == ["controlplane.E004"]


def test_runworker_runs_the_checks_before_it_starts():
    """The registration and the command detection, end to end: a worker on an in-memory database with no
    event bus refuses to start, naming both problems."""
    environ = {
        k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "GRIP_URL", "EVENTSTREAM_USE_REDIS"}
    }
    environ.update(DATABASE_URL="sqlite://:memory:", DEBUG="true", LOG_LEVEL="warning")
    result = subprocess.run(
        [sys.executable, "manage.py", "runworker", "--once"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "controlplane.E003" in result.stderr
    assert "controlplane.W001" in result.stderr
