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
from django.utils.translation import gettext_lazy

from agents.access import apps_for, can
from agents.models import DEFAULT_EXECUTOR_NAME, Action, App, Executor, PromptVersion
from agents.services import executor_sync_default
from core.errors import Conflict, Forbidden, NotFound, ServiceUnavailable

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


class AppNotUsable(Forbidden):
    code = "app_not_usable"
    message = gettext_lazy("You may see this app but not start runs of it.")


class AppDisabled(Conflict):
    code = "app_disabled"
    message = gettext_lazy("This app is disabled: enable it before starting runs.")


def app_not_found() -> NotFound:
    """The one answer for an app that does not exist and for one the user may not see."""
    return NotFound("No such app.", code="app_not_found")


def app_for_use(*, user, slug: str) -> App:
    """The app ``slug`` if ``user`` may start runs of it (``app.use``). An app they may not see is a 404,
    the same as a missing one; one they may only see is a 403."""
    app = _cached(("app", slug), lambda: App.objects.select_related("executor").filter(slug=slug).first())
    if app is None or not user.is_authenticated:
        raise app_not_found()
    if user.is_superuser:
        if not app.enabled:
            raise AppDisabled()
        return app
    if can(user, Action.USE, app):
        return app
    if can(user, Action.SEE, app):
        raise AppNotUsable()
    raise app_not_found()


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


NO_PROMPT: dict[str, object] = {"version": 0, "text": ""}


def prompt_payload(version_id: int | None) -> dict[str, object]:
    """The prompt as the executor receives it (``prompt`` of the start request): version 0 when the app has
    none. Versions never change once saved, so the cache cannot serve a stale one."""
    if version_id is None:
        return NO_PROMPT
    version = _cached(("prompt", version_id), lambda: PromptVersion.objects.filter(pk=version_id).first())
    if version is None:
        return NO_PROMPT
    return {"version": version.number, "text": version.text}


def app_for(*, user, slug: str, action: str = Action.SEE) -> App:
    """The app ``slug`` if ``user`` may do ``action`` on it. One they may not see is a 404 (the body of a
    missing app); one they may see but not ``action`` on is a 403. Read fresh, not from the cache: for
    the pages and admin-like endpoints, not the run start."""
    app = apps_for(user, Action.SEE).filter(slug=slug).first()
    if app is None:
        raise app_not_found()
    if action != Action.SEE and not can(user, action, app):
        raise NotAllowedOnApp(detail={"action": action})
    return app


class NotAllowedOnApp(Forbidden):
    code = "not_allowed"
    message = gettext_lazy("You may see this app but not do this with it.")
