"""The fleet's figures, read for the health summary and for ``/metrics``: each function is one query on one
table, whatever the number of rows (conditional aggregates over rows an index finds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Now

from agents.models import AgentState, AgentStatus, Executor
from observability.models import ReconcilerHeartbeat, Span, SpanStatus
from run_queue.models import QueueEntry, State
from runs.models import ACTIVE_STATUSES, TERMINAL_STATUSES, Run, RunStatus

LAST_HOUR = timedelta(hours=1)
# Upper bounds (seconds) of the run-duration histogram's buckets; +Inf is added.
DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
UNFINISHED = [State.READY, State.LEASED, State.PARKED]


def agents_by_state() -> dict[str, int]:
    """How many agents are in each state (every state named, zeros included)."""
    counts = {str(state): Count("pk", filter=Q(state=state)) for state in AgentState}
    return AgentStatus.objects.aggregate(**counts)


def executors_with_health() -> list[Executor]:
    """Every executor with what the agent-status monitor last learnt of it (``health`` may be missing)."""
    return list(Executor.objects.select_related("health").order_by("name"))


def executor_is_up(executor: Executor) -> bool:
    health = getattr(executor, "health", None)  # the reverse one-to-one raises when there is no row
    return executor.enabled and health is not None and health.up


def queue_figures() -> dict:
    """Entries by state; ``ready`` are those a worker may claim now, ``delayed`` wait for their retry's
    backoff; ``expired`` are leased past their lease (a worker died and no other has claimed them yet).
    ``depth`` is everything not finished (ready, delayed, leased, parked). Done entries, the bulk
    of the table, are left out by the state index."""
    claimable = Q(state=State.READY, available_at__lte=Now())
    figures = QueueEntry.objects.filter(state__in=[*UNFINISHED, State.DEAD]).aggregate(
        depth=Count("pk", filter=Q(state__in=UNFINISHED)),
        ready=Count("pk", filter=claimable),
        delayed=Count("pk", filter=Q(state=State.READY, available_at__gt=Now())),
        leased=Count("pk", filter=Q(state=State.LEASED)),
        expired=Count("pk", filter=Q(state=State.LEASED, lease_expires_at__lt=Now())),
        parked=Count("pk", filter=Q(state=State.PARKED)),
        dead=Count("pk", filter=Q(state=State.DEAD)),
        oldest_ready_at=Min("available_at", filter=claimable),
    )
    return figures


def runs_last_hour_by_status(now: datetime) -> dict[str, int]:
    """Runs created or finished in the hour before ``now``, by their current status (every status named).

    ``status IN (every status)`` lets the created-at half walk ``runs_status_idx`` (status, created_at) one
    status at a time; the finished half walks ``runs_finished_idx``: neither reads older runs.
    """
    since = now - LAST_HOUR
    recent = Q(status__in=RunStatus.values, created_at__gte=since) | Q(finished_at__gte=since)
    counts = {str(status): Count("pk", filter=Q(status=status)) for status in RunStatus}
    return Run.objects.filter(recent).aggregate(**counts)


@dataclass
class RunFigures:
    active: dict[str, int]  # runs queued, running or waiting on a person now
    started: dict[str, int]  # runs created since the window's start, by current status
    finished: dict[str, int]  # runs finished since the window's start, by (terminal) status
    durations: list[int]  # cumulative counts of finished runs per DURATION_BUCKETS bound, then +Inf
    duration_sum_s: float


def run_figures(since: datetime) -> RunFigures:
    """Active runs, and the runs started and finished since ``since`` with the durations of the finished
    ones (finished_at - started_at), counted into buckets by the database."""
    started = Q(status__in=RunStatus.values, created_at__gte=since)
    finished = Q(finished_at__gte=since)
    timed = finished & Q(started_at__isnull=False)
    aggregates: dict[str, Aggregate] = {}
    for status in ACTIVE_STATUSES:
        aggregates[f"active_{status}"] = Count("pk", filter=Q(status=status))
    for status in RunStatus:
        aggregates[f"started_{status}"] = Count("pk", filter=started & Q(status=status))
    for status in TERMINAL_STATUSES:
        aggregates[f"finished_{status}"] = Count("pk", filter=finished & Q(status=status))
    for index, bound in enumerate(DURATION_BUCKETS):
        aggregates[f"le_{index}"] = Count("pk", filter=timed & Q(duration__lte=timedelta(seconds=bound)))
    aggregates["le_inf"] = Count("pk", filter=timed)
    aggregates["duration_sum"] = Sum("duration", filter=timed)
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    row = (
        Run.objects.filter(started | finished | Q(status__in=ACTIVE_STATUSES))
        .annotate(duration=duration)
        .aggregate(**aggregates)
    )
    return RunFigures(
        active={status: row[f"active_{status}"] for status in ACTIVE_STATUSES},
        started={status: row[f"started_{status}"] for status in RunStatus},
        finished={status: row[f"finished_{status}"] for status in TERMINAL_STATUSES},
        durations=[row[f"le_{index}"] for index in range(len(DURATION_BUCKETS))] + [row["le_inf"]],
        duration_sum_s=row["duration_sum"].total_seconds() if row["duration_sum"] else 0.0,
    )


def run_errors_since(since: datetime) -> dict[str, int]:
    """Runs that ended with an error class since ``since``, by class."""
    rows = (
        Run.objects.filter(finished_at__gte=since)
        .exclude(error_class="")
        .values_list("error_class")
        .annotate(count=Count("pk"))
        .order_by()
    )
    return dict(rows)


def executor_call_errors_since(since: datetime) -> dict[tuple[str, str], int]:
    """Failed executor calls since ``since``, from the trace store: {(operation, error class): count}.
    Empty when tracing is off (no spans are written). Only failed spans are read (``obs_span_error_idx``)."""
    rows = (
        Span.objects.filter(status=SpanStatus.ERROR, start__gte=since, name__startswith="executor.")
        .values_list("name", KeyTextTransform("error.type", "attributes"))
        .annotate(count=Count("pk"))
        .order_by()
    )
    return {(name.removeprefix("executor."), error or ""): count for name, error, count in rows}


def last_heartbeat() -> ReconcilerHeartbeat | None:
    """The most recent pass of any reconciler."""
    return ReconcilerHeartbeat.objects.order_by("-last_pass_at").first()


def dead_entries(*, limit: int) -> list[dict]:
    """The most recently dead queue entries with their run's app (None once the run is pruned)."""
    app = Subquery(Run.objects.filter(pk=OuterRef("run_id")).values("app__slug")[:1])
    return list(
        QueueEntry.objects.filter(state=State.DEAD)
        .annotate(app=app)
        .order_by("-updated_at", "-pk")
        .values("run_id", "app", "attempts", "last_error_class", "last_error_detail", "updated_at")[:limit]
    )
