"""System checks for process layouts that cannot work, or that work worse than people expect.

Django runs them before every management command (``migrate``, ``runworker``, ``standalone``, ...), so a
compose deployment meets them in its one-shot ``migrate`` and in every worker. Errors stop the command;
warnings are printed. uvicorn and gunicorn do not run system checks.
"""

from __future__ import annotations

import contextlib
import sys

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError

# Commands that write run events from a process of their own, apart from the web processes' listeners.
PUBLISHING_COMMANDS = frozenset({"runworker", "reconcile"})
GRIP_MIDDLEWARE = "django_grip.GripMiddleware"


def running_command() -> str:
    """The management command this process runs (``manage.py runworker`` → "runworker"), else ""."""
    return sys.argv[1] if len(sys.argv) > 1 else ""


def grip_configured() -> bool:
    return bool(getattr(settings, "GRIP_URL", None) or getattr(settings, "GRIP_PROXIES", None))


def default_database() -> dict:
    return settings.DATABASES["default"]


def _is_sqlite() -> bool:
    return default_database()["ENGINE"] == "django.db.backends.sqlite3"


def _in_memory_sqlite() -> bool:
    name = str(default_database().get("NAME") or "")
    return _is_sqlite() and (name == ":memory:" or "mode=memory" in name)


@register()
def check_live_delivery(app_configs=None, **kwargs) -> list[CheckMessage]:
    command = running_command()
    if command not in PUBLISHING_COMMANDS or hasattr(settings, "EVENTSTREAM_REDIS") or grip_configured():
        return []
    return [
        Warning(
            f"`{command}` runs as a process of its own, but neither Redis (EVENTSTREAM_REDIS) nor GRIP "
            "(GRIP_URL) carries its events to the web processes.",
            hint="Browsers watching a run then see its events only when their stream re-reads storage (after "
            "30-60 s of quiet) or reconnects. Set REDIS_URL, or "
            "GRIP_URL with Pushpin in front of the web processes, or run everything in one process with "
            "`manage.py standalone`.",
            id="controlplane.W001",
        )
    ]


@register()
def check_grip_middleware(app_configs=None, **kwargs) -> list[CheckMessage]:
    if not grip_configured() or GRIP_MIDDLEWARE in settings.MIDDLEWARE:
        return []
    return [
        Error(
            f"GRIP is configured (GRIP_URL or GRIP_PROXIES) but {GRIP_MIDDLEWARE} is not in MIDDLEWARE.",
            hint="Without it a stream request that came through Pushpin is not recognised: the web process "
            "streams it itself and the events published through GRIP reach nobody. settings.py adds the "
            "middleware whenever GRIP_URL is set.",
            id="controlplane.E001",
        )
    ]


@register()
def check_pool_needs_postgresql(app_configs=None, **kwargs) -> list[CheckMessage]:
    if not getattr(settings, "DATABASE_POOL_SIZE", 0) or not _is_sqlite():
        return []
    return [
        Error(
            "DATABASE_POOL_SIZE is set, but the database is SQLite.",
            hint="The connection pool is psycopg's, for PostgreSQL only. Unset DATABASE_POOL_SIZE, or set "
            "DATABASE_URL to a postgres:// URL.",
            id="controlplane.E002",
        )
    ]


@register()
def check_shared_database(app_configs=None, **kwargs) -> list[CheckMessage]:
    command = running_command()
    if command in PUBLISHING_COMMANDS and _in_memory_sqlite():
        return [
            Error(
                f"`{command}` runs as a process of its own on an in-memory SQLite database.",
                hint="An in-memory database belongs to one process: this one would never see the runs the "
                "web process queues. Use a database file or PostgreSQL.",
                id="controlplane.E003",
            )
        ]
    if command == "standalone" and _is_sqlite() and default_database().get("NAME") == ":memory:":
        return [
            Error(
                "`standalone` on a plain :memory: SQLite database.",
                hint="Every connection to :memory: is a database of its own, and every request thread and "
                "worker thread opens its own connection. Use a file (the default), in a temporary directory "
                "for a throwaway demo.",
                id="controlplane.E004",
            )
        ]
    return []


# The placeholders .env.example ships with: a deployment that kept one signs sessions (or guards its executor)
# with a value anyone can read in this repository.
PLACEHOLDER_PREFIX = "change-me"


@register(Tags.security, deploy=True)
def check_no_placeholder_secrets(app_configs=None, **kwargs) -> list[CheckMessage]:
    names = ["SECRET_KEY", "EXECUTOR_TOKEN"]
    kept = [name for name in names if str(getattr(settings, name, "")).startswith(PLACEHOLDER_PREFIX)]
    return [
        Error(
            f"{name} is still the placeholder from .env.example.",
            hint='Set a random value, e.g. python -c "import secrets; print(secrets.token_urlsafe(50))".',
            id="controlplane.E050",
        )
        for name in kept
    ]


@register()
def check_plugins(app_configs=None, **kwargs) -> list[CheckMessage]:
    """A plugin named in PLUGINS_ENABLED that cannot be loaded is offered to no run: say so at start."""
    from agents.plugins import registry

    return [
        Warning(
            f"The plugin {row.name!r} is enabled (PLUGINS_ENABLED) but cannot be loaded: {row.reason}.",
            hint="`manage.py plugins` lists every installed plugin; fix it, or take it off PLUGINS_ENABLED.",
            id="controlplane.W010",
        )
        for row in registry.installed()
        if row.status == registry.Status.BROKEN
    ]


@register()
def check_file_roots(app_configs=None, databases=None, **kwargs) -> list[CheckMessage]:
    """Roots whose directory is missing (FILE_ROOTS always; the admin's too when a database is checked,
    as ``migrate`` and ``check --database default`` do), and a request transaction the audit would share."""
    from files.models import FileRoot, root_path_problem

    messages: list[CheckMessage] = []
    if any(config.get("ATOMIC_REQUESTS") for config in settings.DATABASES.values()):
        messages.append(
            Error(
                "ATOMIC_REQUESTS is on: a failing request would roll back its file access audit rows.",
                hint="Leave ATOMIC_REQUESTS off (views that write open their own transactions).",
                id="files.E002",
            )
        )
    roots = dict(settings.FILE_ROOTS)
    if databases and "default" in databases:
        with contextlib.suppress(DatabaseError):  # not migrated yet
            roots.update(FileRoot.objects.filter(enabled=True).values_list("name", "path"))
    messages += [
        Warning(
            f"The file root {name!r} cannot be served: {path!r}: {problem}",
            hint="Create the directory, fix its path (FILE_ROOTS or the admin), or disable the root.",
            id="files.W001",
        )
        for name, path in sorted(roots.items())
        if (problem := root_path_problem(path))
    ]
    return messages
