"""Every PostgreSQL connection of the control plane has a connect timeout and a statement timeout, so a
database that stops answering fails requests instead of hanging them; the worker's LISTEN connection has
no statement timeout (it waits for notifications as long as it lives)."""

import pytest
from django.db import connection

from run_queue.listener import _conninfo
from tests.controlplane.test_settings import start

pytestmark = pytest.mark.django_db


def show(name: str, conn=connection) -> str:
    with conn.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_connections_have_a_statement_timeout_and_a_connect_timeout():
    assert show("statement_timeout") == "30s"
    assert connection.get_connection_params()["connect_timeout"] == 5


def test_the_worker_s_listen_connection_has_no_statement_timeout():
    import psycopg

    with psycopg.connect(**_conninfo(), autocommit=True, connect_timeout=5) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "0"


def test_the_timeouts_come_from_the_environment_and_zero_turns_the_statement_timeout_off():
    probe = (
        "import django; django.setup(); from django.db import connection; c = connection.cursor(); "
        "c.execute('SHOW statement_timeout'); print(c.fetchone()[0], connection.get_connection_params()"
        "['connect_timeout'])"
    )
    import os
    import subprocess
    import sys

    from tests.stack import database_url

    def probe_with(**variables):
        environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlplane.settings", "DEBUG": "true"}
        environ.update(DATABASE_URL=database_url(), **variables)
        result = subprocess.run([sys.executable, "-c", probe], env=environ, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert probe_with(DATABASE_STATEMENT_TIMEOUT_MS="1500", DATABASE_CONNECT_TIMEOUT_S="3") == ["1500ms", "3"]
    assert probe_with(DATABASE_STATEMENT_TIMEOUT_MS="0") == ["0", "5"]
    refused = start(DATABASE_STATEMENT_TIMEOUT_MS="soon")
    assert refused.returncode != 0
    assert "DATABASE_STATEMENT_TIMEOUT_MS" in refused.stderr.splitlines()[-1]


def test_a_black_holed_database_fails_a_connection_within_the_connect_timeout():
    import os
    import subprocess
    import sys
    import time

    from tests.runs.test_redis_down import BlackHole

    hole = BlackHole()
    probe = (
        "import django; django.setup(); from django.db import connection\n"
        "try:\n    connection.ensure_connection()\nexcept Exception as exc:\n    print(type(exc).__name__)"
    )
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlplane.settings", "DEBUG": "true"}
    environ.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{hole.port}/x", DATABASE_CONNECT_TIMEOUT_S="2"
    )
    began = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-c", probe], env=environ, capture_output=True, text=True, timeout=30
        )
    finally:
        hole.close()
    assert result.stdout.strip() == "OperationalError", result.stderr
    assert time.monotonic() - began < 10  # the interpreter and Django start in ~1-2 s of it
