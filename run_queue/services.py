"""Writes to the queue. Every change to a leased entry is conditional on its lease token (fencing):
a worker that lost its lease changes nothing."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy

from core.db import update_fields
from core.errors import Conflict
from run_queue.models import QueueEntry, State, lease_held_sql, lease_held_where

CHANNEL = "run_queue"


class LeaseLost(Conflict):
    code = "lease_lost"
    message = gettext_lazy("This worker no longer holds the run's lease.")


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with equal jitter: half the capped delay, plus up to the other half at random."""
    delay = min(settings.QUEUE_RETRY_CAP_S, settings.QUEUE_RETRY_BASE_S * 2 ** max(attempts - 1, 0))
    return delay / 2 + random.uniform(0, delay / 2)


def db_now(after_s: float = 0.0):
    """The database's clock, ``after_s`` seconds on: claims compare leases and ``available_at`` with it,
    so every write of those times takes it too, never a process's own clock (``Now()`` is the statement's
    timestamp on PostgreSQL)."""
    if not after_s:
        return Now()
    return ExpressionWrapper(Now() + timedelta(seconds=after_s), output_field=DateTimeField())


def _notify() -> None:
    # NOTIFY inside the transaction is delivered when it commits (and dropped if it rolls back).
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")


@transaction.atomic(savepoint=False)
def entry_enqueue(
    *, run_id: uuid.UUID, priority: int = 0, max_attempts: int | None = None, parked: bool = False
) -> QueueEntry:
    """Queue a run; ``parked`` holds it until ``entry_unpark`` (e.g. behind another run of its session)."""
    entry = entry_new(run_id=run_id, priority=priority, max_attempts=max_attempts, parked=parked)
    entry.save(force_insert=True)
    if not parked:
        _notify()
    return entry


def entry_new(
    *, run_id: uuid.UUID, priority: int = 0, max_attempts: int | None = None, parked: bool = False
) -> QueueEntry:
    """The entry ``entry_enqueue`` would save, unsaved: for a caller that inserts it together with its own
    rows (``core.db.insert_together``), with ``notify=CHANNEL`` unless it is parked."""
    return QueueEntry(
        run_id=run_id,
        priority=priority,
        max_attempts=max_attempts or settings.QUEUE_MAX_ATTEMPTS,
        state=State.PARKED if parked else State.READY,
    )


def entry_withdraw(*, run_id: uuid.UUID) -> bool:
    """Take a run out of the queue before any worker holds it (a cancelled queued run)."""
    return bool(
        QueueEntry.objects.filter(run_id=run_id, state__in=[State.READY, State.PARKED]).update(
            state=State.DONE, finished_at=db_now(), updated_at=db_now()
        )
    )


@transaction.atomic
def entries_enqueue(*, run_ids: Iterable[uuid.UUID], priority: int = 0) -> int:
    """Enqueue many runs in one statement (imports, benchmarks)."""
    now = timezone.now()
    rows = [
        QueueEntry(run_id=rid, priority=priority, max_attempts=settings.QUEUE_MAX_ATTEMPTS, available_at=now)
        for rid in run_ids
    ]
    QueueEntry.objects.bulk_create(rows, batch_size=5000)
    _notify()
    return len(rows)


def _release_fields() -> dict:
    return {"lease_owner": "", "lease_token": None, "lease_expires_at": None, "updated_at": db_now()}


def _fresh_budget() -> dict:
    """A new retry budget: ``attempts`` keeps counting every claim, ``max_attempts`` moves past it."""
    return {"max_attempts": F("attempts") + settings.QUEUE_MAX_ATTEMPTS}


def entry_retry(*, entry: QueueEntry, error_class: str, detail: str) -> State | None:
    """Schedule another attempt after a backoff, or mark the entry dead when attempts are spent.

    Returns the new state, or None when the lease was lost.
    """
    errors = {"last_error_class": error_class, "last_error_detail": detail}
    if entry.attempts >= entry.max_attempts:
        return State.DEAD if entry_mark_dead(entry=entry, error_class=error_class, detail=detail) else None
    available_at = db_now(backoff_seconds(entry.attempts))
    updated = _held(entry).update(state=State.READY, available_at=available_at, **errors, **_release_fields())
    return State.READY if updated else None


def entry_mark_dead(*, entry: QueueEntry, error_class: str, detail: str) -> bool:
    return bool(
        _held(entry).update(
            state=State.DEAD,
            finished_at=db_now(),
            last_error_class=error_class,
            last_error_detail=detail,
            **_release_fields(),
        )
    )


def entry_park(*, entry: QueueEntry) -> bool:
    """Park the entry (the run waits on a human): no worker holds it; the retry budget starts afresh on
    resume. ``attempts`` keeps counting every claim (the one count of a run's attempts); the budget moves
    instead (``max_attempts`` = attempts so far + the budget), so a run that asks many questions does not
    use up its retries.

    If someone asked to wake it while it was leased (``entry_unpark`` raced the handler's decision to
    park), it goes back to ready instead, so the wake-up is never lost.
    """
    budget = _fresh_budget()
    if _held(entry).filter(wake_requested=False).update(state=State.PARKED, **budget, **_release_fields()):
        return True
    woken = (
        _held(entry)
        .filter(wake_requested=True)
        .update(
            state=State.READY,
            wake_requested=False,
            available_at=db_now(),
            **budget,
            **_release_fields(),
        )
    )
    if woken:
        _notify()
    return bool(woken)


@transaction.atomic
def entry_unpark(*, run_id: uuid.UUID) -> bool:
    """Make a parked entry ready; if a worker holds it right now, ask that its park re-queue it instead."""
    if QueueEntry.objects.filter(run_id=run_id, state=State.PARKED).update(
        state=State.READY, available_at=db_now(), updated_at=db_now()
    ):
        _notify()
        return True
    return bool(QueueEntry.objects.filter(run_id=run_id, state=State.LEASED).update(wake_requested=True))


def entries_complete(*, entries: list[QueueEntry]) -> set[int]:
    """Mark entries done in one statement; returns the ids actually completed (the rest lost their lease)."""
    if not entries:
        return set()
    if connection.vendor == "postgresql":
        return _complete_postgresql(entries)
    done = set()
    for entry in entries:
        if _held(entry).update(state=State.DONE, finished_at=db_now(), **_release_fields()):
            done.add(entry.pk)
    return done


def _complete_postgresql(entries: list[QueueEntry]) -> set[int]:
    table = QueueEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS q
               SET state = 'done', finished_at = now(), updated_at = now(),
                   lease_owner = '', lease_token = NULL, lease_expires_at = NULL
              FROM unnest(%s::bigint[], %s::uuid[]) AS c(id, token)
             WHERE {lease_held_sql("q", id_sql="c.id", token_sql="c.token")}
            RETURNING q.id
            """,  # noqa: S608 - the table name is ours, values are parameters
            [[e.pk for e in entries], [e.lease_token for e in entries]],
        )
        return {row[0] for row in cursor.fetchall()}


def entries_done(*, ids: list[int]) -> set[int]:
    """Which of these entries are done."""
    return set(QueueEntry.objects.filter(pk__in=ids, state=State.DONE).values_list("pk", flat=True))


def leases_renew(*, lease_tokens: list[uuid.UUID]) -> set[uuid.UUID]:
    """Extend the leases still held; returns the tokens that are (the others were lost)."""
    if not lease_tokens:
        return set()
    expires = db_now(settings.QUEUE_LEASE_S)
    QueueEntry.objects.held(lease_tokens).update(lease_expires_at=expires, updated_at=db_now())
    held = QueueEntry.objects.held(lease_tokens).values_list("lease_token", flat=True)
    return {token for token in held if token is not None}


@transaction.atomic
def leases_release(*, lease_tokens: list[uuid.UUID], refund_attempt: bool) -> int:
    """Give entries back to the queue at once (shutdown). ``refund_attempt`` when they never started."""
    if not lease_tokens:
        return 0
    extra = {"attempts": F("attempts") - 1} if refund_attempt else {}
    released = QueueEntry.objects.held(lease_tokens).update(
        state=State.READY, available_at=db_now(), **extra, **_release_fields()
    )
    _notify()
    return released


def entries_prune(*, older_than_s: float | None = None, limit: int = 10_000) -> int:
    """Delete finished (done) entries older than the retention, at most ``limit`` per call."""
    retention = settings.QUEUE_RETENTION_S if older_than_s is None else older_than_s
    cutoff = timezone.now() - timedelta(seconds=retention)
    ids = list(QueueEntry.objects.finished_before(cutoff).values_list("pk", flat=True)[:limit])
    return QueueEntry.objects.filter(pk__in=ids, state=State.DONE).delete()[0] if ids else 0


@transaction.atomic
def entries_retry_now(*, ids: Iterable[int]) -> int:
    """Operator action: make dead, parked or waiting entries ready at once with fresh attempts."""
    updated = QueueEntry.objects.filter(
        pk__in=list(ids), state__in=[State.DEAD, State.READY, State.PARKED]
    ).update(
        state=State.READY,
        available_at=db_now(),
        finished_at=None,
        **_fresh_budget(),
        **_release_fields(),
    )
    _notify()
    return updated


@transaction.atomic
def entries_mark_dead(*, ids: Iterable[int], reason: str) -> list[QueueEntry]:
    """Operator action: stop entries that are not running (a leased one is left to its worker).

    Returns the entries marked dead, so the caller can tell the handler (which fails their runs).
    """
    entries = list(
        QueueEntry.objects.select_for_update().filter(pk__in=list(ids), state__in=[State.READY, State.PARKED])
    )
    QueueEntry.objects.filter(pk__in=[e.pk for e in entries]).update(
        state=State.DEAD,
        finished_at=db_now(),
        last_error_class="operator",
        last_error_detail=reason,
        **_release_fields(),
    )
    return entries


def lease_fence(entry: QueueEntry) -> None:
    """Inside a transaction: lock the entry's row and raise ``LeaseLost`` unless ``entry``'s lease holds.

    Domain writes made in the same transaction after this call cannot interleave with a takeover: a new
    claim of the row waits for this transaction, and a worker whose lease expired writes nothing.
    """
    if not list(_held(entry).select_for_update().values_list("pk", flat=True)):
        raise LeaseLost()


def lease_complete(entry: QueueEntry) -> None:
    """Inside a transaction: mark the entry done and raise ``LeaseLost`` unless ``entry``'s lease holds.

    A handler calls this in the transaction of its last write (``Outcome.completed()``): the domain's end
    and the queue's commit together, and the worker saves a round of settling. Like ``lease_fence``, the
    update locks the row, so a takeover cannot interleave.
    """
    # Values, not the database's clock: update_fields renders no expressions, and a finished entry's times
    # are compared with nothing but the retention's cutoff.
    now = timezone.now()
    values = {"state": State.DONE, "finished_at": now, **_release_fields(), "updated_at": now}
    if not update_fields(QueueEntry, where=lease_held_where(entry), values=values):  # once per run: no ORM
        raise LeaseLost()


def _held(entry: QueueEntry):
    """The entry, as long as ``entry``'s lease holds."""
    return QueueEntry.objects.filter(**lease_held_where(entry))
