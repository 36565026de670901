"""Spans around the hops of a run, with OpenTelemetry's API only.

The SDK, the exporters and the instrumentations are set up by ``observability.tracing`` when ``TRACING`` is
on; until then (and in processes that never set it up) every helper here is a no-op that costs one check of
``state.enabled``, so the hot path pays nothing for tracing that is off.

One trace per run: a run's trace id is ``Run.trace_id`` and its root span (``run.start``, in the process that
queued it) has the span id ``run_traceparent`` derives from the run's id, so every later process (a worker, a
reconciler, the executor, the tool gateway) can continue the trace from the run row alone, with no span id
stored anywhere.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

TRACER_NAME = "controlplane"
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

Attributes = Mapping[str, str | int | float | bool]


@dataclass
class TracingState:
    enabled: bool = False
    tracer: trace.Tracer | None = None  # asking the provider for it costs ~10 µs: once per process


state = TracingState()

# The ids the next span must take (``span(..., ids=...)``): read by observability.tracing's id generator.
forced_ids: ContextVar[tuple[int, int] | None] = ContextVar("forced_span_ids", default=None)


def run_traceparent(trace_id: str, run_id: uuid.UUID) -> str:
    """The W3C ``traceparent`` of a run's root span: every hop of the run continues its trace from it."""
    return f"00-{trace_id}-{run_id.hex[:16]}-01"


def parse_traceparent(value: str | None) -> tuple[int, int] | None:
    """(trace id, span id) of a well-formed ``traceparent``; None for anything else (the spec says to
    ignore a malformed one, not to fail)."""
    match = _TRACEPARENT.match(value or "")
    if match is None:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id


def _tracer() -> trace.Tracer:
    if state.tracer is None:
        state.tracer = trace.get_tracer(TRACER_NAME)
    return state.tracer


def _parent_context(traceparent: str | None):
    ids = parse_traceparent(traceparent)
    if ids is None:
        return None
    parent = trace.SpanContext(ids[0], ids[1], is_remote=True, trace_flags=trace.TraceFlags(1))
    return trace.set_span_in_context(trace.NonRecordingSpan(parent))


@contextlib.contextmanager
def span(
    name: str,
    *,
    parent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes | None = None,
    ids: tuple[int, int] | None = None,
) -> Iterator[Span]:
    """A span around the block, current while it runs (logs carry its ids), ended with status error and the
    exception recorded if the block raises. ``parent`` is a ``traceparent`` to continue (a run's, or one
    received); without it the span continues the current one. ``ids`` forces (trace id, span id) — the root
    span of a run. When tracing is off: the invalid span, whose methods do nothing."""
    if not state.enabled:
        yield INVALID_SPAN
        return
    token = forced_ids.set(ids) if ids is not None else None
    try:
        manager = _tracer().start_as_current_span(
            name, context=_parent_context(parent), kind=kind, attributes=attributes
        )
        current = manager.__enter__()
    finally:
        if token is not None:
            forced_ids.reset(token)
    try:
        yield current
    except BaseException as exc:
        if not manager.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        manager.__exit__(None, None, None)


def record_span(
    name: str,
    *,
    parent: str | None,
    start_ns: int,
    end_ns: int | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes | None = None,
    error: tuple[str, str] | None = None,
) -> None:
    """A span of something already over (a wait in the queue), placed by its times."""
    if not state.enabled:
        return
    recorded = _tracer().start_span(
        name, context=_parent_context(parent), kind=kind, attributes=attributes, start_time=start_ns
    )
    if error is not None:
        mark_error(recorded, *error)
    recorded.end(end_time=end_ns or time.time_ns())


def mark_error(target: Span, error_class: str, message: str = "") -> None:
    """Status error with the error's class (``error.type``, as OpenTelemetry's conventions name it)."""
    target.set_attribute("error.type", error_class)
    target.set_status(Status(StatusCode.ERROR, message[:500]))


def current() -> Span:
    return trace.get_current_span()


def traceparent_of(target: Span, default: str | None = None) -> str | None:
    """The ``traceparent`` that makes the receiver's spans children of ``target`` (``default`` when it
    is not recording: tracing off, the receiver still gets the run's trace id)."""
    context = target.get_span_context()
    if not context.is_valid or not target.is_recording():
        return default
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def log_ids(target: Span | None = None) -> dict[str, Any]:
    """``trace_id`` and ``span_id`` of the current span, for a log line (nothing when there is none)."""
    context = (target or trace.get_current_span()).get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def flush(timeout_ms: int = 5000) -> None:
    """Export what is queued now (a process about to ``os._exit``, which skips the SDK's own flush)."""
    if state.enabled:
        force_flush = getattr(trace.get_tracer_provider(), "force_flush", None)
        if force_flush is not None:
            force_flush(timeout_ms)
