"""Readiness checks: each returns (ok, detail) and never raises."""

from __future__ import annotations

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor


def check_database() -> tuple[bool, str]:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"[:300]
    return True, "ok"


def check_migrations() -> tuple[bool, str]:
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"[:300]
    if plan:
        return (
            False,
            f"{len(plan)} unapplied migration(s), first {plan[0][0].app_label}.{plan[0][0].name}",
        )
    return True, "ok"


def check_redis() -> tuple[bool, str] | None:
    if not settings.REDIS_URL:
        return None
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:
        # One try: redis-py retries a failed command with backoff by default, which made a probe against
        # a black-holed Redis take about 20 s instead of failing within its timeouts.
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=settings.REDIS_SOCKET_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )
        client.ping()
        client.close()
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"[:300]
    return True, "ok"


def readiness() -> tuple[bool, dict[str, dict[str, object]]]:
    checks: dict[str, tuple[bool, str] | None] = {
        "database": check_database(),
        "migrations": check_migrations(),
        "redis": check_redis(),
    }
    report = {name: {"ok": r[0], "detail": r[1]} for name, r in checks.items() if r is not None}
    return all(item["ok"] for item in report.values()), report
