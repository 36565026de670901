import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from run_queue import services
from run_queue.models import QueueEntry
from run_queue.worker import Worker, WorkerOptions
from tests.run_queue.handlers import LOG_TABLE

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout=20.0, interval=0.02, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


@pytest.fixture
def enqueue():
    def make(count=1, **kwargs):
        return [services.entry_enqueue(run_id=uuid.uuid4(), **kwargs) for _ in range(count)]

    return make


@pytest.fixture
def make_worker():
    def make(handler, **options):
        options.setdefault("lease_seconds", 30.0)
        options.setdefault("poll_seconds", 0.05)
        options.setdefault("grace_seconds", 5.0)
        options.setdefault("prune_every_seconds", 3600.0)
        return Worker(handler=handler, options=WorkerOptions(**options))

    return make


@pytest.fixture
def log_table(transactional_db):
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {LOG_TABLE} (run_id uuid NOT NULL, worker text NOT NULL, attempt int NOT NULL, "
            "started_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
    yield LOG_TABLE
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {LOG_TABLE}")


def logged(column="run_id"):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {LOG_TABLE}")
        return [row[0] for row in cursor.fetchall()]


def subprocess_env(**extra):
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    url = f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    return dict(os.environ, DATABASE_URL=url, LOG_LEVEL="WARNING", **extra)


@pytest.fixture
def spawn_worker():
    processes = []

    def spawn(*args, **env):
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runworker", *args],
            cwd=ROOT,
            env=subprocess_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        process.stdout.close()


def states():
    return dict(QueueEntry.objects.values_list("run_id", "state"))


@pytest.fixture(autouse=True)
def _runs_not_access(every_user_may_use_every_app):
    """These tests are about runs, not access: every user they make may start runs of every app."""
