"""Reads of apps and executors for the hot path: starting a run (web) and driving it (worker).

They change rarely and are read for every run, so each process keeps them for ``CONFIG_CACHE_S`` seconds
(a query with two joins cost ~1 ms of Python per run in each process). A save or delete in this process
empties the cache at once (agents.signals); other processes see it when their copy expires. The objects
are shared between threads: read them, never change them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from agents.models import DEFAULT_EXECUTOR_NAME, App, Executor
from agents.services import executor_sync_default
from core.errors import NotFound, ServiceUnavailable

_cache: dict[tuple, tuple[float, Any]] = {}


def _cached(key: tuple, load: Callable[[], Any]) -> Any:
    """``load()``, or what it returned less than ``CONFIG_CACHE_S`` ago. A miss (None) is not kept."""
    ttl = settings.CONFIG_CACHE_S
    if ttl <= 0:
        return load()
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    value = load()
    if value is not None:
        _cache[key] = (now + ttl, value)
    return value


def config_cache_clear() -> None:
    _cache.clear()


def default_executor() -> Executor | None:
    """The executor runs go to unless their app names another; None when there is none (or it is disabled).

    With ``EXECUTOR_URL`` set, the row named "default" mirrors the ``EXECUTOR_*`` settings (a deployment
    connects to its executor with no admin step); without it, the row is whatever an admin made it.
    """
    if settings.EXECUTOR_URL:
        mirrored = (
            settings.EXECUTOR_URL,
            settings.EXECUTOR_TOKEN,
            settings.EXECUTOR_CONNECT_TIMEOUT_S,
            settings.EXECUTOR_TIMEOUT_S,
            settings.EXECUTOR_RETRIES,
        )  # settings the row mirrors: a change makes a new key
        executor = _cached(("default-executor", *mirrored), executor_sync_default)
    else:
        executor = _cached(
            ("default-executor",), lambda: Executor.objects.filter(name=DEFAULT_EXECUTOR_NAME).first()
        )
    return executor if executor is not None and executor.enabled else None


def app_for_use(*, user, slug: str) -> App:
    """The enabled app ``slug`` if ``user`` may start runs of it; otherwise a 404 (RBAC narrows this)."""
    app = _cached(("app", slug), lambda: App.objects.select_related("executor").filter(slug=slug).first())
    if app is None or not app.enabled or not user.is_authenticated:
        raise NotFound("No such app.", code="app_not_found")
    return app


def app_by_id(pk: int) -> App | None:
    return _cached(("app-id", pk), lambda: App.objects.filter(pk=pk).first())


def executor_by_id(pk: int) -> Executor | None:
    return _cached(("executor-id", pk), lambda: Executor.objects.filter(pk=pk).first())


def executor_for_app(app: App) -> Executor:
    """The executor a new run of ``app`` goes to."""
    executor = app.executor if app.executor_id else default_executor()
    if executor is None or not executor.enabled:
        raise ServiceUnavailable("No executor is available for this app.", code="no_executor")
    return executor
