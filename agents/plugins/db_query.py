"""The ``db_query`` plugin: one read-only SQL query against a database the operator named.

Which databases: ``DB_QUERY_DATABASES`` lists the DATABASES aliases agents may query (the first is the
default). It is empty unless the operator fills it, and it should not name ``default``: the control plane's
own database holds users, password hashes and tokens.

What is refused, in three fences, so that a gap in one is closed by the next:

1. ``sql_guard.check_query`` parses the statement with sqlglot (the alias' dialect) before anything reaches
   the database: exactly one query, no DML or DDL anywhere in it (writable CTEs included), no ``SELECT …
   INTO``, no ``FOR UPDATE / SHARE``, no COPY, SET, transaction control, LOCK, CALL, DO, EXPLAIN, and no
   call to a function that changes state, runs SQL text or reads the server's files (its docstring).
2. PostgreSQL runs it as a server-side cursor (``DECLARE … CURSOR FOR``: one statement only, a query only,
   sent with the extended protocol) in a ``READ ONLY`` transaction with ``SET LOCAL statement_timeout``,
   always rolled back: a function the deny-list does not know that writes is refused by the server.
   SQLite runs it with ``PRAGMA query_only`` and a progress handler that stops it at the timeout.
3. The operator gives each alias a database role that may only SELECT what agents may read (defence in
   depth: the plugin cannot tell a table of secrets from a table of sales).

Parameters are bound by the driver, never interpolated: ``$1, $2…`` on PostgreSQL, ``?`` on SQLite.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from django.conf import settings
from django.db import connections
from django.db import utils as db_utils

from agents.plugins import db_query_run
from agents.plugins.base import Call, Limits, Plugin, PluginError
from agents.plugins.sql_guard import check_query

logger = structlog.get_logger(__name__)

_DIALECTS = {"postgresql": "postgres", "sqlite": "sqlite"}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["sql"],
    "properties": {
        "sql": {
            "type": "string",
            "minLength": 1,
            "maxLength": 100_000,
            "description": "One read-only query (SELECT, WITH … SELECT, VALUES). Parameters: $1, $2… on "
            "PostgreSQL, ? on SQLite.",
        },
        "params": {
            "type": "array",
            "maxItems": 1000,
            "items": {"type": ["string", "number", "boolean", "null"]},
            "description": "Values bound to the query's parameters, in order.",
        },
        "max_rows": {
            "type": "integer",
            "minimum": 1,
            "description": "Return at most this many rows (the operator's cap still applies).",
        },
        "database": {
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "description": "Which configured database to query; the first configured one if omitted.",
        },
    },
}

RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["columns", "rows", "row_count", "truncated", "duration_ms"],
    "properties": {
        "columns": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "type"],
                "properties": {"name": {"type": "string"}, "type": {"type": ["string", "null"]}},
            },
        },
        "rows": {"type": "array", "items": {"type": "array"}},
        "row_count": {"type": "integer", "minimum": 0},
        "truncated": {"type": "boolean"},
        "duration_ms": {"type": "number", "minimum": 0},
    },
}

LIMITS = Limits(timeout_s=15.0, max_result_bytes=1_000_000)


def query(arguments: dict[str, Any], call: Call) -> dict[str, Any]:
    started = time.monotonic()
    alias = _allowed_alias(arguments.get("database"))
    connection = connections[alias]
    check_query(arguments["sql"], dialect=_DIALECTS[connection.vendor])
    timeout_ms = _timeout_ms(call)
    max_rows = min(arguments.get("max_rows", settings.DB_QUERY_MAX_ROWS), settings.DB_QUERY_MAX_ROWS)
    try:
        result = db_query_run.run(
            connection,
            arguments["sql"],
            list(arguments.get("params", [])),
            max_rows=max_rows,
            timeout_ms=timeout_ms,
            max_bytes=LIMITS.max_result_bytes * 9 // 10,  # room for the columns and the rest
        )
    except db_utils.Error as exc:  # Django's own: connecting failed
        logger.warning("db_query_connect_failed", database=alias, error=str(exc))
        connection.close()
        raise PluginError(
            "database_unavailable", f"cannot reach the database {alias!r}", {"database": alias}, status=503
        ) from None
    result["duration_ms"] = round((time.monotonic() - started) * 1000, 3)
    return result


def _allowed_alias(requested: str | None) -> str:
    allowed = list(settings.DB_QUERY_DATABASES)
    if not allowed:
        raise PluginError(
            "database_not_allowed",
            "no database is configured for db_query (DB_QUERY_DATABASES)",
            {"allowed": []},
        )
    alias = allowed[0] if requested is None else requested
    if alias not in allowed or alias not in connections.settings:
        raise PluginError(
            "database_not_allowed", f"the database {alias!r} may not be queried", {"allowed": allowed}
        )
    vendor = connections[alias].vendor
    if vendor not in _DIALECTS:
        raise PluginError(
            "database_not_allowed", f"db_query cannot query a {vendor} database", {"allowed": allowed}
        )
    return alias


def _timeout_ms(call: Call) -> int:
    """The setting's timeout, but never past the moment the gateway stops waiting."""
    timeout_ms = min(settings.DB_QUERY_TIMEOUT_MS, int(call.remaining() * 1000))
    if timeout_ms < 1:
        raise PluginError("timeout", "no time was left to run the query", status=504)
    return timeout_ms


PLUGIN = Plugin(
    name="db_query",
    description="Run one read-only SQL query (SELECT) against a configured database and return its rows.",
    schema=SCHEMA,
    result_schema=RESULT_SCHEMA,
    function=query,
    limits=LIMITS,
)
