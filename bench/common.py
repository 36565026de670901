"""What the benchmarks share: a scratch PostgreSQL database, Django set up on it, and process helpers.

Import it first thing (after putting the project root on ``sys.path[0]``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[1]
BASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/controlplane")
# Live events cross processes (worker → web) only through Redis.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextlib.contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """Create an empty database, set Django up on it (migrated), drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:6]}"
    admin = _with_database(BASE_URL, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(BASE_URL, name)
    try:
        setup_django(url)
        yield url
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def process_env(url: str, **extra: str) -> dict[str, str]:
    # The services log at WARNING unless BENCH_LOG_LEVEL says otherwise (production's default is INFO).
    level = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
    # One benchmark user makes all the load: the per-user limits are raised out of its way, not turned off,
    # so their checks are still paid for on every start and stream.
    limits = {"RUNS_MAX_ACTIVE_PER_USER": "1000000", "STREAMS_MAX_PER_USER": "1000000"}
    return dict(os.environ, DATABASE_URL=url, REDIS_URL=REDIS_URL, LOG_LEVEL=level, **limits, **extra)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def web_command(port: int) -> list[str]:
    """One web process as production runs it (uvicorn, no access log), on ``port``."""
    return [
        PYTHON, "-m", "uvicorn", "controlplane.asgi:application", "--port", str(port), "--no-access-log",
        "--log-level", "warning", "--timeout-keep-alive", "60",
    ]  # fmt: skip


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=env)


def stop(processes: list[subprocess.Popen], timeout: float = 60) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_http(url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(url, headers=headers, timeout=1).ok:
                return
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def percentile(sorted_values: list[float], pct: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * pct))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


PYTHON = sys.executable


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in {"postgres", "postmaster"}:
                    total += cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total
