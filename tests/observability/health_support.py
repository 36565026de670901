"""Rows for the health summary and the metrics: runs in bulk, queue entries, agents, executors."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.utils import timezone

from agents.models import AgentState, AgentStatus, ExecutorHealth
from run_queue.models import QueueEntry, State
from runs.models import Run, RunStatus
from tests.factories import AppFactory, ExecutorFactory, SessionFactory, UserFactory


def bulk_runs(count: int, *, status: str, created_at: datetime, duration_s: float | None = None) -> list[Run]:
    """``count`` runs of one session in one go; finished ones (``duration_s`` given) ended
    ``duration_s`` after they started, at ``created_at + duration_s``."""
    # Disabled: the executor of these rows is neither up nor down in the figures.
    app = AppFactory(slug="bulk", executor=ExecutorFactory(name="bulk-executor", enabled=False))
    session = SessionFactory(app=app, user=UserFactory(username="bulk-owner"))
    started = created_at if status != RunStatus.QUEUED else None
    finished = created_at + timedelta(seconds=duration_s) if duration_s is not None else None
    rows = [
        Run(
            session=session,
            app=app,
            executor=app.executor,
            user=session.user,
            status=status,
            trace_id=uuid.uuid4().hex,
            started_at=started,
            finished_at=finished,
        )
        for _ in range(count)
    ]
    runs = Run.objects.bulk_create(rows, batch_size=2000)
    # created_at is auto_now_add: bulk_create wrote now, so it is moved afterwards.
    Run.objects.filter(pk__in=[run.pk for run in runs]).update(created_at=created_at)
    return runs


def ago(**delta) -> datetime:
    return timezone.now() - timedelta(**delta)


def queue_entry(state: str, **fields) -> QueueEntry:
    if state == State.LEASED:
        fields.setdefault("lease_token", uuid.uuid4())
        fields.setdefault("lease_expires_at", timezone.now() + timedelta(seconds=30))
        fields.setdefault("lease_owner", "worker-1")
    updated_at = fields.pop("updated_at", None)
    entry = QueueEntry.objects.create(run_id=fields.pop("run_id", uuid.uuid4()), state=state, **fields)
    if updated_at is not None:  # auto_now: moved after the save
        QueueEntry.objects.filter(pk=entry.pk).update(updated_at=updated_at)
    return entry


def fleet() -> dict:
    """Three enabled executors (one up, one down after failed polls, one never polled), one disabled but
    last seen up, and agents in several states."""
    up = ExecutorFactory(name="exec-up")
    down = ExecutorFactory(name="exec-down")
    ExecutorFactory(name="exec-new")
    disabled = ExecutorFactory(name="exec-off", enabled=False)
    seen = ago(seconds=5)
    ExecutorHealth.objects.create(executor=up, up=True, last_seen_at=seen, last_poll_at=seen)
    ExecutorHealth.objects.create(
        executor=down, up=False, failed_polls=3, last_error="ConnectError: refused", last_poll_at=seen
    )
    ExecutorHealth.objects.create(executor=disabled, up=True, last_seen_at=seen)
    now = timezone.now()
    states = [AgentState.BUSY, AgentState.BUSY, AgentState.IDLE, AgentState.WAITING_INPUT]
    for number, state in enumerate(states):
        AgentStatus.objects.create(
            executor=up, agent_id=f"agent-{number}", state=state, since=now, observed_at=now
        )
    AgentStatus.objects.create(
        executor=down, agent_id="agent-x", state=AgentState.OFFLINE, since=now, observed_at=now
    )
    return {"up": up, "down": down}
