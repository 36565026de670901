"""Appending events to a run: seq assignment, projections (status, todos, human-loop requests), publishing.

Callers hold a transaction; ``append_events`` locks the run row, so two writers can never interleave seqs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from core.db import insert_rows, update_fields
from runs import inbox, streaming
from runs.models import (
    ACTIVE_STATUSES,
    HumanLoopRequest,
    HumanLoopStatus,
    Run,
    RunEvent,
    RunStatus,
    Todo,
)
from runs.protocol import FINAL_STATUSES


@dataclass(frozen=True)
class NewEvent:
    type: str
    data: dict[str, Any]


def append_events(
    *,
    run_id,
    events: list[NewEvent],
    executor_seq: int | None = None,
    fence: Callable[[], None] | None = None,
    attempts: int | None = None,
    locked: Run | None = None,
) -> tuple[Run, list[RunEvent]]:
    """Store ``events`` after the run's last one and apply them to its projections; publish after commit.

    ``executor_seq`` records how far the executor's stream has been consumed, in the same transaction, so a
    resumed stream neither loses nor repeats an event. ``fence`` runs right after the run row is locked (the
    worker checks its lease there): every writer locks the run row first, so locks are always taken in the
    same order (run, then queue entry, then human-loop requests) and two writers cannot deadlock.
    ``attempts`` records the queue entry's count of attempts on the run in the same statement (a
    worker's first write of an attempt): the queue counts, the run shows its count. ``locked`` is the run
    as the caller already locked it in this transaction (the worker locks it together with its queue
    entry, in one statement).
    """
    run = locked if locked is not None else Run.objects.select_for_update().get(pk=run_id)
    if fence is not None:
        fence()
    status_before = run.status
    rows = [
        RunEvent(run=run, seq=run.last_seq + offset, type=event.type, data=event.data)
        for offset, event in enumerate(events, start=1)
    ]
    if rows:  # a batch may hold nothing to store (only types we do not know) and still move executor_seq
        _insert(rows)
    fields: dict[str, Any] = {"last_seq": run.last_seq + len(rows), "synced_at": timezone.now()}
    if executor_seq is not None:
        fields["executor_seq"] = executor_seq
    if attempts is not None:
        fields["attempts"] = attempts
    for row in rows:
        fields.update(_project(run, row))
    # Under the row lock this cannot miss; the condition states the transition being made. Built without
    # the ORM (core.db.update_fields): this runs for every batch of every run.
    updated = update_fields(Run, where={"id": run.pk, "status": status_before}, values=fields)
    assert updated == 1, "run changed under its row lock"
    for name, value in fields.items():
        setattr(run, name, value)
    if rows:
        transaction.on_commit(lambda: streaming.publish(run.pk, rows))
        # Only a run that has asked a person can change anyone's inbox: one attribute for every other.
        if run.asked_human and inbox.batch_changes_questions(rows):
            transaction.on_commit(lambda: inbox.publish_hint(run.user_id, run_id=run.pk, reason="event"))
    return run, rows


COPY_FROM = 16  # batches at least this long go through COPY
_COLUMNS = ["run_id", "seq", "type", "data", "created_at"]


def _insert(rows: list[RunEvent]) -> None:
    """Insert the events; a long batch through COPY, which costs a fraction of an INSERT's client-side
    parameter rendering (a profile of a 40,000-event run put a quarter of the worker's time there)."""
    now = timezone.now()
    if connection.vendor != "postgresql" or len(rows) < COPY_FROM:
        for row in rows:
            row.created_at = now
        insert_rows(RunEvent, _COLUMNS, [[r.run_id, r.seq, r.type, r.data, now] for r in rows])
        return
    columns = ", ".join(_COLUMNS)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {RunEvent._meta.db_table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            row.created_at = now
            copy.write_row((row.run_id, row.seq, row.type, Jsonb(row.data), now))


def _project(run: Run, event: RunEvent) -> dict[str, Any]:
    """Apply one event to the projections; return the run fields it changes."""
    handler = _PROJECTIONS.get(event.type)
    return handler(run, event) if handler else {}


def _on_started(run: Run, event: RunEvent) -> dict[str, Any]:
    if run.status != RunStatus.QUEUED:
        return {}
    run.status = RunStatus.RUNNING
    return {"status": RunStatus.RUNNING, "started_at": run.started_at or timezone.now()}


def _on_finished(run: Run, event: RunEvent) -> dict[str, Any]:
    status = event.data.get("status")
    if run.status not in ACTIVE_STATUSES or status not in FINAL_STATUSES:
        return {}
    run.status = status
    error = event.data.get("error") or {}
    if run.asked_human:  # a run that never asked has no questions to close: no statement
        HumanLoopRequest.objects.filter(run=run).exclude(status=HumanLoopStatus.CLOSED).update(
            status=HumanLoopStatus.CLOSED
        )
    return {
        "status": status,
        "finished_at": timezone.now(),
        "error_class": str(error.get("code") or "")[:50],
        "error_detail": str(error.get("message") or ""),
    }


def _on_todo_update(run: Run, event: RunEvent) -> dict[str, Any]:
    todos = [t for t in event.data.get("todos", []) if isinstance(t, dict) and t.get("id")]
    Todo.objects.filter(run=run).exclude(todo_id__in=[str(t["id"]) for t in todos]).delete()
    Todo.objects.bulk_create(
        [
            Todo(
                run=run,
                todo_id=str(t["id"])[:100],
                title=str(t.get("title", ""))[:500],
                status=t.get("status", "pending"),
                position=index,
                updated_seq=event.seq,
            )
            for index, t in enumerate(todos)
        ],
        update_conflicts=True,
        unique_fields=["run", "todo_id"],
        update_fields=["title", "status", "position", "updated_seq"],
    )
    return {}


def _on_human_request(run: Run, event: RunEvent) -> dict[str, Any]:
    HumanLoopRequest.objects.get_or_create(
        run=run,
        external_id=str(event.data.get("request_id", ""))[:100],
        defaults={
            "question": str(event.data.get("question", "")),
            "options": event.data.get("options") or [],
            "request_seq": event.seq,
        },
    )
    asked = {} if run.asked_human else {"asked_human": True}
    run.asked_human = True
    if run.status != RunStatus.RUNNING:
        return asked
    run.status = RunStatus.WAITING_HUMAN
    run.waiting_since = timezone.now()
    return {"status": RunStatus.WAITING_HUMAN, "waiting_since": run.waiting_since, **asked}


def _on_human_reply(run: Run, event: RunEvent) -> dict[str, Any]:
    """The request is closed; the run works again once no other question of it is still open (an agent
    may ask several before it waits), and the time it waited moves its deadline on."""
    HumanLoopRequest.objects.filter(run=run, external_id=str(event.data.get("request_id", ""))).update(
        status=HumanLoopStatus.CLOSED
    )
    if run.status != RunStatus.WAITING_HUMAN:
        return {}
    if HumanLoopRequest.objects.filter(run=run).exclude(status=HumanLoopStatus.CLOSED).exists():
        return {}
    fields: dict[str, Any] = {"status": RunStatus.RUNNING, "waiting_since": None}
    if run.deadline is not None and run.waiting_since is not None:
        fields["deadline"] = run.deadline + (timezone.now() - run.waiting_since)
    for name, value in fields.items():
        setattr(run, name, value)
    return fields


_PROJECTIONS = {
    "run.started": _on_started,
    "run.finished": _on_finished,
    "todo.update": _on_todo_update,
    "human_loop.request": _on_human_request,
    "human_loop.reply": _on_human_reply,
}
