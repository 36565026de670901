"""OpenTelemetry's SDK for the control plane's processes: spans to the ``Span`` table, and to an OTLP backend.

``setup`` runs once per process (``ObservabilityConfig.ready``) when ``TRACING`` is on, in the processes that
do the work: the web server, ``runworker``, ``reconcile`` and ``standalone``. It installs a tracer provider
whose batch processor (the SDK's ``BatchSpanProcessor``: a bounded queue and one thread) hands finished
spans to ``TableSpanExporter`` — one multi-row insert per batch, off the request path — and, when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, to the SDK's OTLP/HTTP exporter as well (Jaeger, Tempo, Grafana,
Langfuse...). ``TRACING_INSTRUMENT`` names the official instrumentations to add (``django``, ``psycopg``,
``urllib3``: a span per request, query, HTTP attempt); none by default, so the hot path pays only for
the spans of ``core.tracing``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog
from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    close_old_connections,
    connection,
    connections,
)
from django.db.backends.base.base import BaseDatabaseWrapper
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import SpanKind as OtelKind
from opentelemetry.trace import StatusCode

from core import tracing
from observability.models import Span, SpanKind, SpanStatus

logger = structlog.get_logger(__name__)

# The commands whose processes trace (anything else — migrate, shell, the tests — does not).
TRACED_COMMANDS = {"runworker": "worker", "reconcile": "reconciler", "standalone": "standalone"}
ATTRIBUTE_CHARS = 1000  # an attribute's text is cut to this in the table (the OTLP copy is whole)

_KINDS = {
    OtelKind.INTERNAL: SpanKind.INTERNAL,
    OtelKind.SERVER: SpanKind.SERVER,
    OtelKind.CLIENT: SpanKind.CLIENT,
    OtelKind.PRODUCER: SpanKind.PRODUCER,
    OtelKind.CONSUMER: SpanKind.CONSUMER,
}
_STATUSES = {
    StatusCode.UNSET: SpanStatus.UNSET,
    StatusCode.OK: SpanStatus.OK,
    StatusCode.ERROR: SpanStatus.ERROR,
}
_setup_lock = threading.Lock()


def process_role(argv: Sequence[str] | None = None) -> str | None:
    """Which traced ``manage.py`` command this process runs ("worker", ...), or None (migrate, shell, the
    tests...). A web server's process is set up by ``controlplane.asgi`` / ``controlplane.wsgi``."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or os.path.basename(argv[0]) != "manage.py":
        return None
    return "web" if argv[1] == "runserver" else TRACED_COMMANDS.get(argv[1])


def setup_if_enabled(role: str) -> None:
    if settings.TRACING:
        setup(role)


class RunIds(RandomIdGenerator):
    """Random ids, except for a run's root span, which takes the ids ``core.tracing.span(ids=...)`` forces
    (the run's trace id and the span id derived from its id: ``core.tracing.run_traceparent``)."""

    def generate_span_id(self) -> int:
        forced = tracing.forced_ids.get()
        return forced[1] if forced is not None else super().generate_span_id()

    def generate_trace_id(self) -> int:
        forced = tracing.forced_ids.get()
        return forced[0] if forced is not None else super().generate_trace_id()


def _attribute(value: object) -> object:
    if isinstance(value, str):
        return value[:ATTRIBUTE_CHARS]
    if isinstance(value, tuple | list):
        return [_attribute(item) for item in value]
    return value


def _when(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


# The columns a span is written with, in this order (``span_values``).
COLUMNS = (
    "trace_id",
    "span_id",
    "parent_id",
    "name",
    "kind",
    "start",
    "end",
    "duration_us",
    "status",
    "status_message",
    "attributes",
    "process",
)


def span_values(span: ReadableSpan, process: str) -> tuple:
    """One span as the values of ``COLUMNS`` (its attributes as JSON text): plain tuples, not model
    instances, since the exporter turns hundreds of spans a second into rows on a thread that shares the
    GIL with the work it traces."""
    context = span.get_span_context()
    assert context is not None
    start, end = span.start_time or 0, span.end_time or span.start_time or 0
    attributes: dict[str, object] = {key: _attribute(value) for key, value in (span.attributes or {}).items()}
    for event in span.events:  # exceptions and retries, in order, under their names
        happened = {key: _attribute(value) for key, value in (event.attributes or {}).items()}
        listed = attributes.setdefault(f"event.{event.name}", [])
        if isinstance(listed, list):
            listed.append(happened)
    return (
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
        f"{span.parent.span_id:016x}" if span.parent is not None else "",
        span.name[:200],
        _KINDS.get(span.kind, SpanKind.INTERNAL),
        _when(start),
        _when(end),
        max(0, (end - start) // 1000),
        _STATUSES.get(span.status.status_code, SpanStatus.UNSET),
        (span.status.description or "")[:2000],
        json.dumps(attributes, separators=(",", ":"), default=str),
        process[:200],
    )


class TableSpanExporter(SpanExporter):
    """Writes each batch the SDK hands over on the processor's own thread (with its own database
    connection): one ``COPY`` on PostgreSQL (a few microseconds of Python per span, where a multi-row
    ``INSERT`` built by the ORM cost ~75), a multi-row insert elsewhere. A batch that cannot be written is
    dropped and logged: tracing never holds up or breaks the work it watches."""

    def __init__(self, process: str) -> None:
        self.process = process
        self.written = 0
        self._connection: BaseDatabaseWrapper | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = [span_values(span, self.process) for span in spans]
        if self._connection is None:  # the processor's thread's: shutdown() closes it from another thread
            self._connection = connections[DEFAULT_DB_ALIAS]
            self._connection.inc_thread_sharing()
        try:
            if self._connection.vendor == "postgresql":
                self._copy(rows)
            else:
                Span.objects.bulk_create([Span(**dict(zip(COLUMNS, row, strict=True))) for row in rows])
        except DatabaseError as exc:
            logger.warning("trace_export_failed", spans=len(rows), error=str(exc)[:300])
            connection.close()
            return SpanExportResult.FAILURE
        finally:
            close_old_connections()  # this thread's connection, when CONN_MAX_AGE says it is done
        self.written += len(rows)
        return SpanExportResult.SUCCESS

    def _copy(self, rows: list[tuple]) -> None:
        columns = ", ".join(f'"{column}"' for column in COLUMNS)
        statement = f"COPY {Span._meta.db_table} ({columns}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def shutdown(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection.dec_thread_sharing()
            self._connection = None


def setup(role: str) -> TracerProvider | None:
    """Install the tracer provider of this process (once); None if one is installed already."""
    with _setup_lock:
        if tracing.state.enabled:
            return None
        process = f"{role}@{socket.gethostname()}:{os.getpid()}"
        resource = Resource.create(
            {
                "service.name": settings.TRACING_SERVICE_NAME,
                "service.instance.id": process,
                "process.role": role,
            }
        )
        provider = TracerProvider(resource=resource, id_generator=RunIds())

        def batched(exporter: SpanExporter) -> BatchSpanProcessor:
            return BatchSpanProcessor(
                exporter,
                max_queue_size=settings.TRACE_QUEUE_SIZE,
                schedule_delay_millis=settings.TRACE_EXPORT_DELAY_MS,
                max_export_batch_size=settings.TRACE_EXPORT_BATCH,
            )

        provider.add_span_processor(batched(TableSpanExporter(process)))
        if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            # The SDK reads OTEL_EXPORTER_OTLP_* (headers, timeout, certificates) from the environment.
            provider.add_span_processor(batched(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _instrument(settings.TRACING_INSTRUMENT)
        tracing.state.enabled = True
        logger.debug("tracing_started", process=process, otlp=bool(settings.OTEL_EXPORTER_OTLP_ENDPOINT))
        return provider


def _instrument(names: Sequence[str]) -> None:
    if "django" in names:  # before the first request loads the middleware (the server's handler)
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().instrument(is_sql_commentor_enabled=False)
    if "psycopg" in names:
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        PsycopgInstrumentor().instrument(skip_dep_check=True)
    if "urllib3" in names:  # the executor client's calls: a span per HTTP attempt, retries included
        from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

        URLLib3Instrumentor().instrument()
