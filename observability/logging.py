"""structlog configuration shared by every process (web, worker, reconciler, executor).

Django's and the libraries' stdlib log records go through the same processors, so every line carries the
context bound with ``structlog.contextvars`` (``request_id``, ``user_id``, ``run_id``, ``executor_id``...) and
the current span's ``trace_id`` and ``span_id``.

Tracebacks never show frame locals (structlog's JSON and Rich tracebacks both do by default: a database error
during sign-in logged the password and the token held by the failing frames), and every line, tracebacks
included, goes through ``observability.redaction`` before it is rendered.
"""

from __future__ import annotations

import io
from typing import Any, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import ExcInfo

from core import tracing
from observability.redaction import redact_event, redact_text


def add_trace_ids(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """The current span's ``trace_id`` and ``span_id`` (when tracing is on and a span is current); ids bound
    in the context (a run's ``trace_id`` while tracing is off) stay as they are."""
    if tracing.state.enabled:
        for key, value in tracing.log_ids().items():
            event.setdefault(key, value)
    return event


SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    add_trace_ids,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


# One list for every call: loggers cached on first use keep a reference to it, and structlog's
# capture_logs (tests) edits it in place — a second configuration with a new list would leave them behind.
STRUCTLOG_PROCESSORS: list[Any] = [
    # First, so a filtered-out debug/info call on a hot path (the queue) costs one level check.
    structlog.stdlib.filter_by_level,
    *SHARED_PROCESSORS,
    structlog.stdlib.PositionalArgumentsFormatter(),
    structlog.processors.UnicodeDecoder(),
    structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
]


def redacted_plain_traceback(sio: TextIO, exc_info: ExcInfo) -> None:
    """The console renderer's traceback: plain (no locals), with secrets scrubbed from its text."""
    rendered = io.StringIO()
    structlog.dev.plain_traceback(rendered, exc_info)
    sio.write(redact_text(rendered.getvalue()))


def _render_steps(log_format: str) -> list[Any]:
    if log_format == "json":
        tracebacks = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        return [tracebacks, redact_event, structlog.processors.JSONRenderer()]
    console = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=redacted_plain_traceback)
    return [redact_event, console]


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """Configure structlog and return the stdlib ``LOGGING`` dict that renders through it."""
    structlog.configure(
        processors=STRUCTLOG_PROCESSORS,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    *_render_steps(log_format),
                ],
                "foreign_pre_chain": SHARED_PROCESSORS,
            },
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structlog"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # request_finished / request_failed lines come from django-structlog with the request id;
            # Django's own duplicate per-request lines add nothing.
            "django.request": {"level": "ERROR"},
            "django.server": {"level": "WARNING"},
            "uvicorn.access": {"level": "WARNING"},
        },
    }
