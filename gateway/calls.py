"""One call through the tool gateway: check it, run the plugin within its limits, record it.

The checks, in order, each answered with the one JSON error shape and each audited:

1. the run-scoped token (``agents.plugins.tokens``): missing or forged → 401 ``invalid_token``, expired →
   401 ``token_expired``, another run's → 403 ``token_not_for_run``;
2. the run: gone → 404, over → 403 ``run_finished``;
3. the plugin: not enabled in this process (``PLUGINS_ENABLED``) → 403 ``plugin_not_enabled``; not declared
   by the run's app, now and when the token was minted → 403 ``plugin_not_declared``;
4. rate limits: the run's calls per minute (``TOOL_GATEWAY_RUN_RATE``) and the plugin's per run → 429;
5. the arguments: a JSON object valid against the plugin's schema → else 400 ``invalid_arguments`` naming
   each field;
6. room to run it: the gateway's and the plugin's concurrency → else 429 ``gateway_busy``.

The plugin then runs on the gateway's own pool (``POOL``): the web thread waits for it at most the plugin's
``timeout_s`` and answers 504 ``plugin_timeout`` after that. A thread cannot be stopped, so a plugin that
overruns keeps its concurrency slots until it really returns: one that hangs for good ends up refused
(429), never holding more web threads than ``TOOL_GATEWAY_CONCURRENCY``. A ``PluginError`` is the plugin's
own explanation (its status, 4xx or 504); any other exception is 502 ``plugin_failed``, its class in the
audit and the span, its text only in the log; a result over ``max_result_bytes`` or off its
``result_schema`` is 502 too.

An executor that emits ``tool.call`` / ``tool.result`` itself says so with a ``Tool-Call-Id`` header (the
reference executor does); otherwise the gateway puts both events on the run's stream, under an id of its
own. Every call is one span ``plugin.<name>`` continuing the request's ``traceparent`` (the run's trace), and
one ``PluginCall`` row written in autocommit after the answer is decided.
"""

from __future__ import annotations

import contextvars
import functools
import json
import math
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import structlog
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from jsonschema import Draft202012Validator
from opentelemetry.trace import SpanKind

from agents.models import App
from agents.plugins import registry, tokens
from agents.plugins.base import Call, Plugin, PluginError
from core import tracing
from core.audit import request_id
from core.db import insert_rows
from core.throttling import count_in_windows
from gateway.models import Outcome, PluginCall
from runs.events import NewEvent, append_events
from runs.models import ACTIVE_STATUSES, Run

log = structlog.get_logger(__name__)

CALL_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
SECRET_NAME = re.compile(r"pass|secret|token|api[-_]?key|auth|credential|cookie|session|private", re.I)
REDACTED = "[redacted]"
AUDIT_ARGUMENTS_MAX = 8_000  # bytes of JSON kept of a call's arguments; past it, a cut preview
ERROR_MESSAGE_MAX = 2_000


class Refused(Exception):
    """A call the gateway answers with an error: ``status``, ``code``, ``message``, ``detail``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        detail: Any = None,
        *,
        outcome: str = Outcome.REFUSED,
        error_class: str = "",
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail
        self.outcome, self.error_class, self.retry_after = outcome, error_class, retry_after


@dataclass
class Request:
    """What the view read off the HTTP request."""

    run_id: uuid.UUID
    plugin: str
    token: str
    body: bytes
    call_id: str
    traceparent: str | None
    client_ip: str | None


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    retry_after: int | None = None


@dataclass
class _Audit:
    """The row being written for this call, filled in as the call goes."""

    run_id: uuid.UUID | None = None
    app_slug: str = ""
    arguments: Any = field(default_factory=dict)
    call_id: str = ""
    plugin_ms: float | None = None
    response_bytes: int = 0
    trace_id: str = ""  # the run's, when no span is recording (tracing off)


# --- the pool and the concurrency slots ---------------------------------------------------------------
_lock = threading.Lock()  # made once per process, under the lock: two first calls must share one of each
_shared: dict[str, Any] = {}
_plugin_slots: dict[Plugin, threading.BoundedSemaphore] = {}


def _pool() -> ThreadPoolExecutor:
    with _lock:
        if "pool" not in _shared:
            size = settings.TOOL_GATEWAY_CONCURRENCY
            _shared["pool"] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="plugin")
        return _shared["pool"]


def _gateway_slots() -> threading.BoundedSemaphore:
    with _lock:
        if "slots" not in _shared:
            _shared["slots"] = threading.BoundedSemaphore(settings.TOOL_GATEWAY_CONCURRENCY)
        return _shared["slots"]


def _slots_of(plugin: Plugin) -> threading.BoundedSemaphore:
    with _lock:
        slots = _plugin_slots.get(plugin)
        if slots is None:
            slots = _plugin_slots[plugin] = threading.BoundedSemaphore(plugin.limits.max_concurrency)
        return slots


@functools.cache
def _validator(plugin: Plugin) -> Draft202012Validator:
    return Draft202012Validator(plugin.schema)


@functools.cache
def _result_validator(plugin: Plugin) -> Draft202012Validator:
    return Draft202012Validator(plugin.result_schema)


# --- the call -------------------------------------------------------------------------------------------
def handle(request: Request) -> Answer:
    started = time.perf_counter()
    audit = _Audit(call_id=request.call_id)
    known = registry.get(request.plugin) is not None
    attributes = {"run.id": str(request.run_id), "plugin.name": request.plugin}
    span_name = f"plugin.{request.plugin}" if known else "plugin.unknown"
    with tracing.span(
        span_name, parent=request.traceparent, kind=SpanKind.SERVER, attributes=attributes
    ) as sp:
        ids = tracing.log_ids(sp)
        structlog.contextvars.bind_contextvars(run_id=str(request.run_id), plugin=request.plugin, **ids)
        try:
            answer = _call(request, audit)
            outcome: str = Outcome.OK
            error: Refused | None = None
        except Exception as exc:  # the gateway's own failure (the database): an error, still on record
            if not isinstance(exc, Refused):
                log.error(
                    "gateway_failed", error_class=type(exc).__name__, error=str(exc)[:500], exc_info=exc
                )
                exc = Refused(
                    503,
                    "unavailable",
                    "The tool gateway could not complete the call.",
                    outcome=Outcome.ERROR,
                    error_class=type(exc).__name__,
                )
            refused = exc
            error, outcome = refused, refused.outcome
            body = {"error": {"code": refused.code, "message": refused.message, "detail": refused.detail}}
            answer = Answer(refused.status, body, refused.retry_after)
            tracing.mark_error(sp, refused.error_class or refused.code, refused.message)
        duration_ms = (time.perf_counter() - started) * 1000
        sp.set_attribute("plugin.outcome", outcome)
        sp.set_attribute("http.response.status_code", answer.status)
        if audit.plugin_ms is not None:
            sp.set_attribute("plugin.duration_ms", round(audit.plugin_ms, 3))
    try:
        _record(request, audit, answer, outcome, error, duration_ms, ids)
    except DatabaseError as exc:  # the answer stands; the log keeps what the table could not
        log.error("plugin_call_not_recorded", error_class=type(exc).__name__, error=str(exc)[:500])
    event = log.info if outcome == Outcome.OK else log.warning
    event(
        "plugin_call",
        outcome=outcome,
        status=answer.status,
        code=error.code if error else None,
        call_id=audit.call_id,
        duration_ms=round(duration_ms, 2),
    )
    return answer


def _call(request: Request, audit: _Audit) -> Answer:
    claims = _claims(request)
    run = _run(request.run_id)
    audit.run_id, audit.app_slug, audit.trace_id = run.pk, run.app_slug, run.trace_id
    structlog.contextvars.bind_contextvars(session_id=str(run.session_id), user_id=run.user_id)
    plugin = registry.get(request.plugin)
    if plugin is None:
        raise Refused(403, "plugin_not_enabled", f"The plugin {request.plugin!r} is not enabled here.")
    if plugin.name not in claims.plugins or plugin.name not in run.app_plugins:
        raise Refused(403, "plugin_not_declared", f"The app does not declare the plugin {plugin.name!r}.")
    arguments = _arguments(request.body, audit, plugin)
    _rate_limit(run, plugin)
    _check_arguments(plugin, arguments)
    emit = not request.call_id
    if emit:
        audit.call_id = f"gw_{uuid.uuid4().hex[:16]}"
        _emit(run, "tool.call", {"call_id": audit.call_id, "name": plugin.name, "arguments": audit.arguments})
    try:
        result = _run_plugin(plugin, arguments, run, audit)
    except Refused as refused:
        if emit:
            error = {"code": refused.code, "message": refused.message, "status": refused.status}
            _emit(run, "tool.result", {"call_id": audit.call_id, "ok": False, "error": error})
        raise
    if emit:
        _emit(run, "tool.result", {"call_id": audit.call_id, "ok": True, "result": result})
    return Answer(200, {"result": result, "call_id": audit.call_id})


def _claims(request: Request) -> tokens.Claims:
    if not request.token:
        raise Refused(401, "invalid_token", "A gateway token is required (Authorization: Bearer).")
    try:
        claims = tokens.read(request.token)
    except tokens.BadToken as bad:
        raise Refused(401, bad.code, bad.message) from None
    if claims.run_id != request.run_id:
        raise Refused(403, "token_not_for_run", "The gateway token belongs to another run.")
    return claims


@dataclass(frozen=True)
class RunFacts:
    """What the gateway needs of a run and its app, read in one statement."""

    pk: uuid.UUID
    status: str
    trace_id: str
    user_id: int
    session_id: uuid.UUID
    app_slug: str
    app_plugins: list[str]


def _run(run_id: uuid.UUID) -> RunFacts:
    """The run and its app's slug and plugins: one join built here, not by the ORM (whose compiler cost a
    call ~1 ms of CPU; bench/gateway.py)."""
    runs, apps = Run._meta.db_table, App._meta.db_table
    sql = (
        "SELECT r.status, r.trace_id, r.user_id, r.session_id, a.slug, a.plugins"  # noqa: S608 (our tables)
        f" FROM {runs} r JOIN {apps} a ON a.id = r.app_id WHERE r.id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Run._meta.pk.get_db_prep_value(run_id, connection)])
        row = cursor.fetchone()
    if row is None:
        raise Refused(404, "not_found", "Not found.")
    status, trace_id, user_id, session_id, slug, plugins = row
    if isinstance(plugins, str | bytes):
        plugins = json.loads(plugins)
    run = RunFacts(run_id, status, trace_id or "", user_id, session_id, slug, plugins or [])
    if run.status not in ACTIVE_STATUSES:
        raise Refused(403, "run_finished", f"The run is over ({run.status}); its token is spent.")
    return run


def _arguments(body: bytes, audit: _Audit, plugin: Plugin) -> dict[str, Any]:
    try:
        arguments = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "invalid_json", "The body is not JSON.", outcome=Outcome.INVALID) from None
    audit.arguments = _for_audit(arguments, plugin)
    if not isinstance(arguments, dict):
        raise Refused(
            400, "invalid_arguments", "The arguments must be a JSON object.", outcome=Outcome.INVALID
        )
    return arguments


def _check_arguments(plugin: Plugin, arguments: dict[str, Any]) -> None:
    errors: dict[str, str] = {}
    for error in _validator(plugin).iter_errors(arguments):
        errors.setdefault(_field(error), error.message[:300])
    if errors:
        raise Refused(
            400,
            "invalid_arguments",
            f"The arguments do not fit the {plugin.name} plugin's schema.",
            errors,
            outcome=Outcome.INVALID,
        )


def _field(error) -> str:
    """The argument an error is about: its path, or the missing property of a ``required`` error."""
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    if error.validator == "required":
        missing = re.match(r"'([^']+)' is a required property", error.message)
        if missing:
            path = f"{path}.{missing.group(1)}"
    return path.lstrip(".") or "(arguments)"


def _rate_limit(run: RunFacts, plugin: Plugin) -> None:
    now = time.time()
    window, retry_after = int(now // 60), 60 - int(now % 60)
    keys = [f"gw:run:{run.pk.hex}:{window}", f"gw:plugin:{plugin.name}:{run.pk.hex}:{window}"]
    run_count, plugin_count = count_in_windows(keys, 60)
    if run_count > settings.TOOL_GATEWAY_RUN_RATE:
        limit, message = (
            "run",
            f"The run has made more than {settings.TOOL_GATEWAY_RUN_RATE} tool calls this minute.",
        )
    elif plugin_count > plugin.limits.calls_per_minute:
        times = plugin.limits.calls_per_minute
        limit, message = "plugin", f"The run has called {plugin.name} more than {times} times this minute."
    else:
        return
    raise Refused(
        429,
        "rate_limited",
        message,
        {"retry_after": retry_after, "limit": limit},
        outcome=Outcome.RATE_LIMITED,
        retry_after=retry_after,
    )


def _run_plugin(plugin: Plugin, arguments: dict[str, Any], run: RunFacts, audit: _Audit) -> Any:
    gateway_slots, plugin_slots = _gateway_slots(), _slots_of(plugin)
    if not gateway_slots.acquire(blocking=False):
        raise _busy("The tool gateway is running as many calls as it may; try again.")
    if not plugin_slots.acquire(blocking=False):
        gateway_slots.release()
        raise _busy(f"The {plugin.name} plugin is running as many calls as it may; try again.")
    timeout = plugin.limits.timeout_s
    call = Call(str(run.pk), run.app_slug, plugin.name, time.monotonic() + timeout, audit.call_id)
    context = contextvars.copy_context()  # the span and the log ids follow the call into the pool
    timing: dict[str, float] = {}

    def timed() -> Any:
        begun = time.perf_counter()
        try:
            return plugin.function(arguments, call)
        finally:
            timing["ms"] = (time.perf_counter() - begun) * 1000

    try:
        future = _pool().submit(context.run, timed)
    except RuntimeError:  # the pool is shutting down with the process
        gateway_slots.release()
        plugin_slots.release()
        raise _busy("The tool gateway is shutting down.") from None

    def release(_future) -> None:
        plugin_slots.release()
        gateway_slots.release()

    future.add_done_callback(release)
    try:
        result = future.result(timeout=timeout)
    except FutureTimeout:
        audit.plugin_ms = timeout * 1000
        raise Refused(
            504,
            "plugin_timeout",
            f"The {plugin.name} plugin did not answer within {timeout:g} s.",
            outcome=Outcome.TIMEOUT,
            error_class="TimeoutError",
        ) from None
    except PluginError as error:
        audit.plugin_ms = timing.get("ms")
        outcome = Outcome.TIMEOUT if error.code == "timeout" else Outcome.ERROR
        raise Refused(
            error.status, error.code, error.message, error.detail, outcome=outcome, error_class="PluginError"
        ) from None
    except Exception as exc:
        audit.plugin_ms = timing.get("ms")
        log.error("plugin_failed", error_class=type(exc).__name__, error=str(exc)[:500], exc_info=exc)
        raise Refused(
            502,
            "plugin_failed",
            f"The {plugin.name} plugin failed.",
            outcome=Outcome.ERROR,
            error_class=type(exc).__name__,
        ) from None
    audit.plugin_ms = timing.get("ms")
    return _checked_result(plugin, result, audit)


def _busy(message: str) -> Refused:
    return Refused(
        429, "gateway_busy", message, {"retry_after": 1}, outcome=Outcome.RATE_LIMITED, retry_after=1
    )


def _checked_result(plugin: Plugin, result: Any, audit: _Audit) -> Any:
    try:
        encoded = json.dumps(result, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise Refused(
            502,
            "bad_result",
            f"The {plugin.name} plugin answered something that is not JSON.",
            outcome=Outcome.ERROR,
            error_class=type(exc).__name__,
        ) from None
    audit.response_bytes = len(encoded)
    if len(encoded) > plugin.limits.max_result_bytes:
        raise Refused(
            502,
            "result_too_large",
            f"The {plugin.name} plugin's result is over {plugin.limits.max_result_bytes} bytes.",
            {"bytes": len(encoded), "max_bytes": plugin.limits.max_result_bytes},
            outcome=Outcome.ERROR,
        )
    error = next(iter(_result_validator(plugin).iter_errors(result)), None)
    if error is not None:
        raise Refused(
            502,
            "bad_result",
            f"The {plugin.name} plugin's result does not fit its result schema.",
            {_field(error): error.message[:300]},
            outcome=Outcome.ERROR,
            error_class="ValidationError",
        )
    return result


def _emit(run: RunFacts, event_type: str, data: dict[str, Any]) -> None:
    with transaction.atomic():
        append_events(run_id=run.pk, events=[NewEvent(event_type, data)])


# --- the audit ------------------------------------------------------------------------------------------
def _for_audit(arguments: Any, plugin: Plugin) -> Any:
    redacted = _redact(arguments, plugin.secret_arguments)
    encoded = json.dumps(redacted, ensure_ascii=False, default=str)
    if len(encoded.encode()) <= AUDIT_ARGUMENTS_MAX:
        return redacted
    return {"_cut": True, "preview": encoded.encode()[:AUDIT_ARGUMENTS_MAX].decode(errors="ignore")}


def _redact(value: Any, secret: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if key in secret or SECRET_NAME.search(str(key)) else _redact(item, secret)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item, secret) for item in value]
    return value


def _record(
    request: Request,
    audit: _Audit,
    answer: Answer,
    outcome: str,
    error: Refused | None,
    duration_ms: float,
    ids: dict[str, str],
) -> None:
    response_bytes = audit.response_bytes if outcome == Outcome.OK else 0
    values = {
        "created_at": timezone.now(),
        "run_id": audit.run_id or request.run_id,
        "app_slug": audit.app_slug,
        "plugin": request.plugin[:100],
        "call_id": audit.call_id,
        "arguments": audit.arguments,
        "outcome": outcome,
        "status": answer.status,
        "error_code": error.code if error else "",
        "error_class": error.error_class if error else "",
        "error_message": (error.message if error else "")[:ERROR_MESSAGE_MAX],
        "duration_ms": round(duration_ms, 3),
        "plugin_ms": None if audit.plugin_ms is None else round(audit.plugin_ms, 3),
        "request_bytes": len(request.body),
        "response_bytes": response_bytes,
        "trace_id": ids.get("trace_id") or audit.trace_id,
        "span_id": ids.get("span_id", ""),
        "request_id": (request_id() or "")[:100],
        "client_ip": request.client_ip or None,
    }
    # One INSERT built without the ORM's compiler (core.db), in autocommit: nothing can roll it back.
    insert_rows(PluginCall, list(values), [list(values.values())])


def retry_after_header(answer: Answer) -> str | None:
    return None if answer.retry_after is None else str(max(1, math.ceil(answer.retry_after)))
