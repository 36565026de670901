"""``GET /api/health/summary``: the fleet at a glance, in five queries whatever its size."""

from __future__ import annotations

from django.utils import timezone

from agents.models import Executor
from observability import selectors


def health_summary() -> dict:
    now = timezone.now()
    agents = selectors.agents_by_state()
    executors = selectors.executors_with_health()
    queue = selectors.queue_figures()
    runs = selectors.runs_last_hour_by_status(now)
    heartbeat = selectors.last_heartbeat()
    up = sum(selectors.executor_is_up(executor) for executor in executors)
    enabled = sum(executor.enabled for executor in executors)
    return {
        "generated_at": now,
        "agents": {"by_state": agents, "total": sum(agents.values())},
        "executors": {"up": up, "down": enabled - up, "items": [_executor(e) for e in executors]},
        "queue": {
            "depth": queue["depth"],
            "ready": queue["ready"],
            "parked": queue["parked"],
            "oldest_ready_age_s": _age_s(now, queue["oldest_ready_at"]),
            "dead": queue["dead"],
        },
        "runs_last_hour": {"by_status": runs, "total": sum(runs.values())},
        "reconciler": {
            "last_pass_at": heartbeat.last_pass_at if heartbeat else None,
            "age_s": _age_s(now, heartbeat.last_pass_at) if heartbeat else None,
            "owner": heartbeat.owner if heartbeat else None,
        },
    }


def _executor(executor: Executor) -> dict:
    health = getattr(executor, "health", None)
    return {
        "id": executor.pk,
        "name": executor.name,
        "enabled": executor.enabled,
        "up": selectors.executor_is_up(executor),
        "failed_polls": health.failed_polls if health else 0,
        "last_seen_at": health.last_seen_at if health else None,
        "last_error": health.last_error if health else "",
    }


def _age_s(now, moment) -> float | None:
    """Seconds since ``moment`` (never negative: the database's clock may run a little ahead of ours)."""
    return None if moment is None else round(max((now - moment).total_seconds(), 0.0), 3)
