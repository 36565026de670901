"""Reads of the trace store: a run's trace as a tree, recent traces, and their pruning.

A trace is readable by whoever may read its run (``runs.selectors.may_read``); the operators
(``observability.access.may_view_dashboard``) read every trace, those with no run among them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Subquery
from django.utils import timezone

from observability.access import may_view_dashboard
from observability.models import Span, SpanStatus
from runs.models import Run
from runs.selectors import may_read

MAX_SPANS = 5000  # a trace's detail shows at most this many spans (its earliest)


@dataclass
class TraceFilter:
    app: str | None = None
    status: str | None = None
    min_duration_ms: int | None = None
    max_duration_ms: int | None = None
    before: datetime | None = None  # the cursor: traces whose root span started before it
    limit: int = 50


def run_of_trace(trace_id: str) -> Run | None:
    """The run a trace belongs to: the run named by its spans (``run.id``), with this trace id."""
    raw = (
        Span.objects.filter(trace_id=trace_id, attributes__has_key="run.id")
        .order_by()
        .values_list("attributes__run.id", flat=True)
        .first()
    )
    try:
        run_id = uuid.UUID(str(raw))
    except ValueError:
        return None  # no span names a run (raw is None), or not a run id
    return Run.objects.select_related("app").filter(pk=run_id, trace_id=trace_id).first()


def readable_trace(user, trace_id: str) -> tuple[Run | None, bool]:
    """(its run, whether ``user`` may read the trace)."""
    run = run_of_trace(trace_id)
    if may_view_dashboard(user):
        return run, True
    return run, run is not None and may_read(user, run)


def span_tree(trace_id: str) -> list[dict[str, Any]]:
    """The trace's spans depth first (children in start order), each with its depth and its offset from
    the trace's first span. A span whose parent is not stored (still in another process's batch, or
    outside the trace store) is shown as a root."""
    spans = list(Span.objects.filter(trace_id=trace_id).order_by("start", "id")[:MAX_SPANS])
    if not spans:
        return []
    known = {span.span_id for span in spans}
    children: dict[str, list[Span]] = {}
    for span in spans:
        parent = span.parent_id if span.parent_id in known and span.parent_id != span.span_id else ""
        children.setdefault(parent, []).append(span)
    origin = spans[0].start
    ordered: list[dict[str, Any]] = []
    stack = [(span, 0) for span in reversed(children.get("", []))]
    seen: set[str] = set()
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        ordered.append(_span_item(span, depth, origin))
        stack.extend((child, depth + 1) for child in reversed(children.get(span.span_id, [])))
    return ordered


def _span_item(span: Span, depth: int, origin: datetime) -> dict[str, Any]:
    return {
        "span_id": span.span_id,
        "parent_id": span.parent_id or None,
        "name": span.name,
        "kind": span.kind,
        "process": span.process,
        "start": span.start,
        "end": span.end,
        "duration_ms": round(span.duration_us / 1000, 3),
        "offset_ms": round((span.start - origin).total_seconds() * 1000, 3),
        "depth": depth,
        "status": span.status,
        "status_message": span.status_message,
        "attributes": span.attributes,
    }


def trace_detail(trace_id: str, run: Run | None) -> dict[str, Any] | None:
    spans = span_tree(trace_id)
    if not spans:
        return None
    start = min(item["start"] for item in spans)
    end = max(item["end"] for item in spans)
    return {
        "trace_id": trace_id,
        "run": {"id": str(run.pk), "app": run.app.slug, "status": run.status} if run is not None else None,
        "started_at": start,
        "duration_ms": round((end - start).total_seconds() * 1000, 3),
        "spans": spans,
    }


ROOT_SPAN = "run.start"
SCAN_ROUNDS = 10  # a filtered list reads at most this many pages of root spans looking for matches


def recent_traces(user, query: TraceFilter) -> tuple[list[dict[str, Any]], datetime | None]:
    """The traces of the runs ``user`` may read (every run for operators), newest first, and the cursor of
    the next page (None at the end).

    Driven by the runs' root spans (``run.start``, newest first on the span table's start index), not by
    the runs: most runs may have no trace (tracing off, or pruned), and the runs table has no index on its
    creation time alone. Each page of roots costs three queries (roots, their runs, their span counts)."""
    runs = Run.objects.all() if may_view_dashboard(user) else Run.objects.visible_to(user)
    if query.app:
        runs = runs.filter(app__slug=query.app)
    if query.status:
        runs = runs.filter(status=query.status)
    found: list[dict[str, Any]] = []
    cursor = query.before
    page = max(query.limit, 100)
    for _ in range(SCAN_ROUNDS):
        roots = Span.objects.filter(name=ROOT_SPAN)
        if cursor is not None:
            roots = roots.filter(start__lt=cursor)
        batch = list(roots.order_by("-start").values_list("trace_id", "start", "attributes__run.id")[:page])
        if not batch:
            return found, None
        by_id: dict[uuid.UUID, tuple[str, datetime]] = {}
        for trace_id, start, run_id in batch:
            try:
                by_id[uuid.UUID(str(run_id))] = (trace_id, start)
            except ValueError:
                continue
        matched = runs.filter(pk__in=list(by_id)).values(
            "pk", "trace_id", "app__slug", "status", "created_at", "finished_at"
        )
        counted = _span_counts([trace_id for trace_id, _ in by_id.values()])
        now = timezone.now()
        rows: list[dict[str, Any]] = []
        for run in matched:
            if by_id[run["pk"]][0] != run["trace_id"]:
                continue
            duration_ms = ((run["finished_at"] or now) - run["created_at"]).total_seconds() * 1000
            if query.min_duration_ms is not None and duration_ms < query.min_duration_ms:
                continue
            if query.max_duration_ms is not None and duration_ms > query.max_duration_ms:
                continue
            spans, errors = counted.get(run["trace_id"], (0, 0))
            rows.append(
                {
                    "trace_id": run["trace_id"],
                    "run_id": str(run["pk"]),
                    "app": run["app__slug"],
                    "status": run["status"],
                    "started_at": by_id[run["pk"]][1],
                    "duration_ms": round(duration_ms, 3),
                    "span_count": spans,
                    "error_count": errors,
                }
            )
        rows.sort(key=lambda row: row["started_at"], reverse=True)
        for row in rows:
            found.append(row)
            if len(found) == query.limit:
                return found, row["started_at"]
        if len(batch) < page:
            return found, None
        cursor = batch[-1][1]
    return found, cursor


def _span_counts(trace_ids: list[str]) -> dict[str, tuple[int, int]]:
    counts = (
        Span.objects.filter(trace_id__in=trace_ids)
        .values("trace_id")
        .annotate(spans=Count("id"), errors=Count("id", filter=Q(status=SpanStatus.ERROR)))
        .order_by()
    )
    return {row["trace_id"]: (row["spans"], row["errors"]) for row in counts}


def prune_spans(*, batch: int = 5000) -> int:
    """Delete one batch of spans older than ``TRACE_RETENTION_DAYS`` (the reconciler's retention step
    calls it until it deletes less than a batch)."""
    if not settings.TRACE_RETENTION_DAYS:
        return 0
    cutoff = timezone.now() - timedelta(days=settings.TRACE_RETENTION_DAYS)
    old = Span.objects.filter(start__lt=cutoff).order_by("start").values("pk")[:batch]
    deleted, _ = Span.objects.filter(pk__in=Subquery(old)).delete()
    return deleted
