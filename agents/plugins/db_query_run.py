"""How ``db_query`` runs a checked query: read-only, bounded in time and rows, always rolled back.

The function runs on the gateway's pool threads, whose connections live on between calls: every call
drops a connection that is obsolete or broken before using it, and one that broke while it was used, so
an aborted transaction or a restarted server never fails the next call.
"""

from __future__ import annotations

import base64
import json
import math
import sqlite3
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any

import psycopg
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.types.json import JsonbLoader
from psycopg.types.multirange import Multirange
from psycopg.types.range import Range

from agents.plugins.base import PluginError

# (host, port, database, oid) → the type's name (format_type); OIDs of a database's own types differ
# between databases, and a type's name never changes under its OID.
_TYPE_NAMES: dict[tuple[str, str, str, int], str] = {}

# Rows asked for per FETCH: few at first (a result of huge rows stops at the byte budget early), then more.
_FIRST_BATCH = 10
_LARGEST_BATCH = 500

_SQLITE_STORAGE_CLASSES = {int: "integer", float: "real", str: "text", bytes: "blob"}


def run(
    connection: BaseDatabaseWrapper,
    sql: str,
    params: list[Any],
    *,
    max_rows: int,
    timeout_ms: int,
    max_bytes: int,
) -> dict[str, Any]:
    """Run ``sql`` (already checked) and return its columns and at most ``max_rows`` JSON-safe rows."""
    rows = _Rows(max_rows, max_bytes)
    _drop_if_unusable(connection)
    try:
        if connection.vendor == "postgresql":
            columns = _run_postgres(connection, sql, params, rows, timeout_ms)
        else:
            columns = _run_sqlite(connection, sql, params, rows, timeout_ms)
    finally:
        _drop_if_broken(connection)
    return {"columns": columns, "rows": rows.kept, "row_count": len(rows.kept), "truncated": rows.truncated}


class _Rows:
    """The rows kept as they are fetched: at most ``max_rows``, and no more than ``max_bytes`` of JSON."""

    def __init__(self, max_rows: int, max_bytes: int) -> None:
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.kept: list[list[Any]] = []
        self.first_values: dict[int, Any] = {}  # column → its first value not NULL (SQLite's types)
        self.size = 0
        self.truncated = False

    def wanted(self) -> int:
        """How many more rows to fetch: one past ``max_rows``, to tell whether there were more."""
        return 0 if self.truncated else self.max_rows + 1 - len(self.kept)

    def add(self, fetched: list[Any]) -> None:
        for row in fetched:
            values = [json_value(value) for value in row]
            self.size += len(json.dumps(values)) + 1  # ASCII-escaped: its length bounds its bytes
            if len(self.kept) == self.max_rows or self.size > self.max_bytes:
                self.truncated = True
                return
            self.kept.append(values)
            for index, value in enumerate(row):
                if value is not None:
                    self.first_values.setdefault(index, value)

    def fetch(self, fetchmany: Callable[[int], list[Any]], before_each: Callable[[], None]) -> None:
        """Fetch in growing batches: a result of huge rows stops at the byte budget after a few of them,
        instead of a thousand reaching this process's memory at once."""
        batch = _FIRST_BATCH
        while wanted := min(batch, self.wanted()):
            before_each()
            fetched = fetchmany(wanted)
            self.add(fetched)
            if len(fetched) < wanted:
                return
            batch = min(batch * 4, _LARGEST_BATCH)


def _drop_if_unusable(connection: BaseDatabaseWrapper) -> None:
    connection.close_if_unusable_or_obsolete()
    if connection.connection is not None and not connection.is_usable():
        connection.close()


def _drop_if_broken(connection: BaseDatabaseWrapper) -> None:
    raw = connection.connection
    if isinstance(raw, psycopg.Connection) and (raw.closed or raw.broken):
        connection.close()


def _run_postgres(
    connection: BaseDatabaseWrapper, sql: str, params: list[Any], rows: _Rows, timeout_ms: int
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_ms / 1000
    # Durable: the READ ONLY transaction must be the connection's own, not a savepoint in a caller's.
    with transaction.atomic(using=connection.alias, durable=True):
        transaction.set_rollback(True, using=connection.alias)  # never commit, whatever happens
        raw: psycopg.Connection = connection.connection

        def bound_next_statement() -> None:  # each statement gets what is left of the timeout
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms < 1:
                raise _timeout(timeout_ms, {})
            raw.execute(f"SET LOCAL statement_timeout = {left_ms}")

        try:
            raw.execute("SET TRANSACTION READ ONLY")
            bound_next_statement()
            # A server-side cursor: DECLARE takes one query only, sent with the extended protocol (never
            # several statements), and FETCH brings only the rows asked for.
            with psycopg.RawServerCursor(raw, "db_query") as cursor:
                cursor.adapters.register_loader("jsonb", JsonbLoader)  # Django reads jsonb as text
                cursor.execute(sql, params)
                rows.fetch(cursor.fetchmany, bound_next_statement)
                description = cursor.description or []
            bound_next_statement()
            types = _postgres_type_names(connection, raw, [column.type_code for column in description])
        except psycopg.Error as exc:
            raise _postgres_error(exc, raw, timeout_ms) from None
    return [{"name": column.name, "type": name} for column, name in zip(description, types, strict=True)]


def _postgres_type_names(connection: BaseDatabaseWrapper, raw: psycopg.Connection, oids: list[int]) -> list:
    where = connection.settings_dict
    database = (str(where["HOST"]), str(where["PORT"]), str(where["NAME"]))
    missing = sorted({oid for oid in oids if (*database, oid) not in _TYPE_NAMES})
    if missing:
        found = raw.execute(
            "SELECT oid::int8, format_type(oid, NULL) FROM pg_catalog.pg_type WHERE oid = ANY(%s::oid[])",
            [missing],
        )
        for oid, name in found.fetchall():
            _TYPE_NAMES[(*database, oid)] = name
    return [_TYPE_NAMES.get((*database, oid)) for oid in oids]


def _postgres_error(exc: psycopg.Error, raw: psycopg.Connection, timeout_ms: int) -> PluginError:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip()
    detail: dict[str, Any] = {"sqlstate": exc.sqlstate}
    detail.update({key: value for key, value in _diag_extras(diag).items() if value})
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return _timeout(timeout_ms, detail)
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return PluginError("statement_not_allowed", message, {**detail, "refused_by": "database"})
    if raw.closed or raw.broken:
        return PluginError(
            "database_unavailable", f"the connection to the database broke: {message}", status=503
        )
    return PluginError("query_failed", message, detail)


def _timeout(timeout_ms: int, detail: dict[str, Any]) -> PluginError:
    detail = {**detail, "timeout_ms": timeout_ms}
    return PluginError("timeout", f"the query was stopped after {timeout_ms} ms", detail, status=504)


def _diag_extras(diag: psycopg.errors.Diagnostic) -> dict[str, str | None]:
    return {"detail": diag.message_detail, "hint": diag.message_hint, "position": diag.statement_position}


def _run_sqlite(
    connection: BaseDatabaseWrapper, sql: str, params: list[Any], rows: _Rows, timeout_ms: int
) -> list[dict[str, Any]]:
    connection.ensure_connection()
    raw: sqlite3.Connection = connection.connection
    deadline = time.monotonic() + timeout_ms / 1000
    query_only = raw.execute("PRAGMA query_only").fetchone()[0]
    raw.execute("PRAGMA query_only = ON")
    raw.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
    cursor = raw.cursor()
    try:
        cursor.execute(sql, params)
        rows.fetch(cursor.fetchmany, lambda: None)  # the progress handler bounds the time
        names = [column[0] for column in cursor.description or []]
    except sqlite3.Error as exc:
        raise _sqlite_error(exc, deadline, timeout_ms) from None
    except OverflowError as exc:  # an integer parameter past 64 bits
        raise PluginError("query_failed", f"a parameter does not fit SQLite: {exc}") from None
    finally:
        cursor.close()
        raw.set_progress_handler(None, 0)
        raw.execute(f"PRAGMA query_only = {int(query_only)}")
        if raw.in_transaction:
            raw.rollback()
    # SQLite has no column types, only each value's storage class: that of the column's first value.
    kinds = {index: _SQLITE_STORAGE_CLASSES.get(type(value)) for index, value in rows.first_values.items()}
    return [{"name": name, "type": kinds.get(index)} for index, name in enumerate(names)]


def _sqlite_error(exc: sqlite3.Error, deadline: float, timeout_ms: int) -> PluginError:
    detail = {"sqlite_error": getattr(exc, "sqlite_errorname", None)}
    if detail["sqlite_error"] == "SQLITE_INTERRUPT" and time.monotonic() > deadline:
        return _timeout(timeout_ms, detail)
    if detail["sqlite_error"] == "SQLITE_READONLY":
        return PluginError("statement_not_allowed", str(exc), {**detail, "refused_by": "database"})
    return PluginError("query_failed", str(exc), detail)


def json_value(value: Any) -> Any:
    """``value`` as the database driver gave it, made JSON-safe without losing precision."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return (
            value if math.isfinite(value) else {"nan": "NaN", "inf": "Infinity"}.get(str(value), "-Infinity")
        )
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple | Multirange):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, Range):
        if value.isempty:
            return {"empty": True}
        return {"lower": json_value(value.lower), "upper": json_value(value.upper), "bounds": value.bounds}
    return str(value)  # inet, cidr, money, geometric types… as the database writes them


def iso_duration(value: timedelta) -> str:
    """An interval as ISO 8601 (``P1DT2H3M4.5S``, ``-PT30S``)."""
    micros = abs((value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds)
    days, micros = divmod(micros, 86_400_000_000)
    hours, micros = divmod(micros, 3_600_000_000)
    minutes, micros = divmod(micros, 60_000_000)
    seconds = f"{micros / 1_000_000:.6f}".rstrip("0").rstrip(".")
    sign = "-" if value < timedelta(0) else ""
    return f"{sign}P{days}DT{hours}H{minutes}M{seconds}S"
