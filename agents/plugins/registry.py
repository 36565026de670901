"""Which plugins are installed, which are enabled, and why the others are not.

Installed: the built-in ones (``BUILTIN``) and those other distributions declare in the
``controlplane.plugins`` entry-point group (``name = "package.module:PLUGIN"``, a ``Plugin`` or a callable
returning one). Enabled: only those named in ``PLUGINS_ENABLED`` — the whitelist — are imported at all, so a
plugin that is installed but not named runs none of its code in this process. A named plugin that fails to
import, is not a ``Plugin``, has another name than its entry, or has a schema that is not a JSON Schema is
*broken*: it is reported (``manage.py plugins``, a system check) and never offered.

The registry is read once per process (``plugins()``); ``reset()`` forgets it (tests, after changing
settings).
"""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from django.conf import settings
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from agents.plugins.base import Plugin

ENTRY_POINT_GROUP = "controlplane.plugins"
BUILTIN = {
    "echo": "agents.plugins.builtin:ECHO",
    "http_fetch": "agents.plugins.http_fetch:PLUGIN",
    "db_query": "agents.plugins.db_query:PLUGIN",
}
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class Status:
    LOADED = "loaded"
    DISABLED = "disabled"  # installed, not named in PLUGINS_ENABLED: never imported
    BROKEN = "broken"  # named, but it could not be loaded (the reason says why)


@dataclass(frozen=True)
class Installed:
    name: str
    source: str  # "built-in" or "entry point (<distribution>)"
    target: str  # "module:attribute"
    status: str
    reason: str = ""
    plugin: Plugin | None = None

    @property
    def enabled(self) -> bool:
        return self.status != Status.DISABLED


@functools.cache
def installed() -> tuple[Installed, ...]:
    """Every plugin this process knows of, by name; enabled ones loaded."""
    enabled = set(settings.PLUGINS_ENABLED)
    found: dict[str, tuple[str, str]] = {name: ("built-in", target) for name, target in BUILTIN.items()}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in BUILTIN:
            continue  # a built-in name cannot be taken over by an installed distribution
        distribution = entry.dist.name if entry.dist is not None else "unknown"
        found[entry.name] = (f"entry point ({distribution})", entry.value)
    rows = []
    for name in sorted(found.keys() | enabled):
        if name not in found:
            rows.append(Installed(name, "-", "-", Status.BROKEN, "named in PLUGINS_ENABLED, not installed"))
            continue
        source, target = found[name]
        if name not in enabled:
            rows.append(Installed(name, source, target, Status.DISABLED, "not in PLUGINS_ENABLED"))
            continue
        plugin, problem = _load(name, target)
        status = Status.LOADED if plugin is not None else Status.BROKEN
        rows.append(Installed(name, source, target, status, problem, plugin))
    return tuple(rows)


@functools.cache
def plugins() -> dict[str, Plugin]:
    """The loaded plugins (enabled and sound), by name."""
    return {row.name: row.plugin for row in installed() if row.plugin is not None}


def get(name: str) -> Plugin | None:
    return plugins().get(name)


def reset() -> None:
    installed.cache_clear()
    plugins.cache_clear()


def _load(name: str, target: str) -> tuple[Plugin | None, str]:
    module_name, _, attribute = target.partition(":")
    try:
        value: Any = getattr(importlib.import_module(module_name), attribute)
        if callable(value) and not isinstance(value, Plugin):
            value = value()
    except Exception as exc:
        return None, f"import error: {type(exc).__name__}: {exc}"[:500]
    problem = check(value, name)
    return (value, "") if not problem else (None, problem)


def check(value: Any, name: str) -> str:
    """Why ``value`` cannot be offered as the plugin ``name`` ("" when it can)."""
    if not isinstance(value, Plugin):
        return f"not a Plugin: {type(value).__name__}"
    if value.name != name:
        return f"its name is {value.name!r}, installed as {name!r}"
    if not NAME.match(name):
        return "a plugin name is lower-case letters, digits and _ (at most 64)"
    for label, schema in (("schema", value.schema), ("result_schema", value.result_schema)):
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            return f"bad {label}: {exc.message}"[:500]
    if value.schema.get("type") != "object":
        return 'bad schema: the arguments must be an object ("type": "object")'
    limits = value.limits
    if not (0 < limits.timeout_s <= 600 and limits.max_result_bytes > 0):
        return "bad limits: timeout_s must be in (0, 600] and max_result_bytes positive"
    if limits.calls_per_minute < 1 or limits.max_concurrency < 1:
        return "bad limits: calls_per_minute and max_concurrency must be at least 1"
    return ""
