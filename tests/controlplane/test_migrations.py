"""Migrations are the schema's versions: every app goes from zero to the latest and back on PostgreSQL."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
OUR_APPS = ["observability", "files", "runs", "run_queue", "agents", "rbac"]  # dependents first


@pytest.fixture
def scratch_database_url():
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("migration round trip runs on PostgreSQL")
    name = f"cp_migrations_{uuid.uuid4().hex[:10]}"
    conninfo = {
        "host": db["HOST"],
        "port": db["PORT"] or 5432,
        "user": db["USER"],
        "password": db["PASSWORD"],
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    yield f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{name}"
    with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(url, *args):
    environ = dict(os.environ, DATABASE_URL=url, LOG_LEVEL="WARNING")
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def applied(url):
    """Each of our apps' migrations as showmigrations lists them (``[X] 0001_initial``), in one process."""
    listing: dict[str, list[str]] = {}
    for line in manage(url, "showmigrations", *OUR_APPS).splitlines():
        if not line.startswith(" "):
            lines = listing.setdefault(line.strip(), [])
        elif line.strip().startswith("["):
            lines.append(line.strip())
    assert sorted(listing) == sorted(OUR_APPS), listing
    return listing


def test_every_app_migrates_up_down_and_up_again(scratch_database_url):
    url = scratch_database_url
    manage(url, "migrate", "--noinput")
    listing = applied(url)
    with_migrations = [app for app in OUR_APPS if listing[app]]
    assert "rbac" in with_migrations
    for app in with_migrations:
        assert all(line.startswith("[X]") for line in listing[app]), app
    for app in with_migrations:
        manage(url, "migrate", app, "zero", "--noinput")
    # Dependents first: an app already at zero stays there while the apps it depends on go down after it.
    listing = applied(url)
    for app in with_migrations:
        assert all(line.startswith("[ ]") for line in listing[app]), app
    manage(url, "migrate", "--noinput")
    listing = applied(url)
    for app in with_migrations:
        assert all(line.startswith("[X]") for line in listing[app]), app
