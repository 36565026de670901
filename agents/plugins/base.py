"""What a plugin is: a named, schema-described function with limits, called by the tool gateway.

A plugin never sees a request, a user or a token: the gateway has checked those before it calls
``function(arguments, call)``, with ``arguments`` already valid against ``schema``. The function returns a
JSON-serialisable result (checked against ``result_schema`` and ``limits.max_result_bytes`` afterwards) or
raises ``PluginError`` for a failure it can explain (a refused host, a statement that writes); any other
exception is the plugin's bug, answered as ``plugin_failed`` without its text reaching the agent.

The function runs on the gateway's own thread pool; ``call.remaining()`` is the time left before the
gateway stops waiting (``limits.timeout_s``), so a plugin that does I/O should bound each wait by it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0  # the gateway answers plugin_timeout (504) after this long
    max_result_bytes: int = 1_000_000  # of the result as JSON; more is result_too_large (502)
    calls_per_minute: int = 120  # per run, for this plugin (the gateway also limits a run's calls in all)
    max_concurrency: int = 8  # calls of this plugin running at once in this process; more are refused (429)


@dataclass(frozen=True)
class Call:
    """The call a function serves: whose run it is and how long it has."""

    run_id: str
    app: str
    plugin: str
    deadline: float  # time.monotonic() at which the gateway stops waiting
    call_id: str = ""

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class PluginError(Exception):
    """A failure the plugin explains to the agent: a stable ``code``, a message, optional detail."""

    def __init__(self, code: str, message: str, detail: Any = None, *, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: the gateway caches per plugin
class Plugin:
    name: str
    description: str
    schema: dict[str, Any]  # JSON Schema (draft 2020-12) of the arguments: an object
    result_schema: dict[str, Any]  # JSON Schema of what ``function`` returns
    function: Callable[[dict[str, Any], Call], Any]
    limits: Limits = field(default_factory=Limits)
    # Argument names whose values the audit record replaces with "[redacted]" (names that look secret —
    # password, token, secret, api_key, authorization… — are redacted whatever a plugin declares).
    secret_arguments: frozenset[str] = frozenset()

    def spec(self) -> dict[str, Any]:
        """What the executor is told of it (the protocol's ``plugins[]``)."""
        return {"name": self.name, "description": self.description, "schema": self.schema}
