"""Reads that several callers share."""

from __future__ import annotations

from django.db.models import QuerySet

from runs.models import Run, RunEvent


def run_history(run_id, *, after: int = 0, todos_only: bool = False) -> QuerySet[RunEvent]:
    """A run's stored events after seq ``after``, in seq order: the one read behind every replay — a
    stream's catch-up (``runs.sse``), django-eventstream's storage for Pushpin (``runs.streaming``) and the
    JSON pages of ``GET /api/runs/{id}/events?after=``. Callers slice it and pick their columns."""
    rows = RunEvent.objects.filter(run_id=run_id, seq__gt=after)
    if todos_only:
        rows = rows.filter(type="todo.update")
    return rows.order_by("seq")


def run_position(run_id) -> tuple[int, str] | None:
    """The run's last stored seq and its status, or None for no such run."""
    return Run.objects.filter(pk=run_id).values_list("last_seq", "status").first()
