"""Claiming: lease a batch of entries to a worker in one statement."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from run_queue.models import QueueEntry, State

_RETURNED = (
    "id",
    "run_id",
    "state",
    "priority",
    "available_at",
    "attempts",
    "max_attempts",
    "lease_owner",
    "lease_token",
    "lease_expires_at",
    "created_at",
)

# Two locking CTEs instead of one `ready OR expired` scan: with the OR the planner must merge two
# partial indexes and sort every ready row before LIMIT; each branch here walks its own partial index
# in order and stops after the batch (see docs/architecture.md). clock_timestamp(), not now(): now() is
# the transaction's start, and a caller inside a longer transaction would see a stale clock.
CLAIM_SQL = """
WITH ready AS (
    SELECT id FROM {table}
     WHERE state = 'ready' AND available_at <= clock_timestamp()
     ORDER BY priority DESC, available_at
     LIMIT %(n)s
       FOR UPDATE SKIP LOCKED
), expired AS (
    SELECT id FROM {table}
     WHERE state = 'leased' AND lease_expires_at < clock_timestamp()
     ORDER BY lease_expires_at
     LIMIT %(n)s
       FOR UPDATE SKIP LOCKED
)
UPDATE {table} AS q
   SET state = 'leased', attempts = q.attempts + 1, lease_owner = %(owner)s, wake_requested = false,
       lease_token = gen_random_uuid(),
       lease_expires_at = clock_timestamp() + make_interval(secs => %(lease)s),
       updated_at = clock_timestamp()
 WHERE q.id IN (SELECT id FROM ready UNION ALL SELECT id FROM expired)
RETURNING {returned}
"""


def claim_batch(*, owner: str, limit: int, lease_seconds: float) -> list[QueueEntry]:
    """Lease up to ``limit`` ready entries (highest priority, oldest first) plus any whose lease expired.

    Each claimed entry gets one more attempt and a fresh lease token. One statement, its own transaction.
    """
    if limit <= 0:
        return []
    if connection.vendor == "postgresql":
        return _claim_postgresql(owner, limit, lease_seconds)
    return _claim_portable(owner, limit, lease_seconds)


def _claim_postgresql(owner: str, limit: int, lease_seconds: float) -> list[QueueEntry]:
    sql = CLAIM_SQL.format(table=QueueEntry._meta.db_table, returned=", ".join(_RETURNED))
    # One statement is its own transaction: no BEGIN/COMMIT round trips on the hot path.
    with connection.cursor() as cursor:
        cursor.execute(sql, {"n": limit, "owner": owner, "lease": lease_seconds})
        rows = cursor.fetchall()
    entries = [QueueEntry(**dict(zip(_RETURNED, row, strict=True))) for row in rows]
    # RETURNING comes back in no particular order: hand the batch out highest priority, oldest first.
    return sorted(entries, key=lambda e: (-e.priority, e.available_at))


def _claim_portable(owner: str, limit: int, lease_seconds: float) -> list[QueueEntry]:
    """SQLite (standalone mode): its single writer, taken at BEGIN IMMEDIATE, makes select-then-update
    safe."""
    claimed = []
    with transaction.atomic():
        now = timezone.now()
        candidates = list(QueueEntry.objects.ready().order_by("-priority", "available_at")[:limit])
        candidates += list(QueueEntry.objects.expired().order_by("lease_expires_at")[:limit])
        for entry in candidates:
            entry.attempts += 1
            entry.wake_requested = False
            _lease_here(entry, owner, now + timedelta(seconds=lease_seconds), "attempts", "wake_requested")
            claimed.append(entry)
    return claimed


def _lease_here(entry: QueueEntry, owner: str, expires_at, *changed: str) -> None:
    """SQLite: lease ``entry`` to ``owner`` under a fresh token (and save the ``changed`` fields too)."""
    entry.state, entry.lease_owner, entry.lease_token = State.LEASED, owner, uuid.uuid4()
    entry.lease_expires_at = expires_at
    leased = ["state", "lease_owner", "lease_token", "lease_expires_at", "updated_at"]
    entry.save(update_fields=[*changed, *leased])


# The reconciler's claim of one run's entry: whatever state it rests in (ready, even during a backoff;
# parked; leased under an expired lease), never from a live lease, and without counting an attempt (the
# reconciler repairs, it does not run the run). The state it was taken from comes back, so it can be given
# back as it was.
TAKE_SQL = """
WITH target AS (
    SELECT id, state FROM {table}
     WHERE run_id = %(run_id)s
       AND (state IN ('ready', 'parked') OR (state = 'leased' AND lease_expires_at < clock_timestamp()))
       FOR UPDATE SKIP LOCKED
)
UPDATE {table} AS q
   SET state = 'leased', lease_owner = %(owner)s, lease_token = gen_random_uuid(),
       lease_expires_at = clock_timestamp() + make_interval(secs => %(lease)s),
       updated_at = clock_timestamp()
  FROM target
 WHERE q.id = target.id
RETURNING {returned}, target.state
"""


def take_over(*, run_id: uuid.UUID, owner: str, lease_seconds: float) -> tuple[QueueEntry, str] | None:
    """Lease one run's entry unless a live lease holds it (or it is done or dead); returns the entry and
    the state it was taken from, or None. Several reconcilers may race for it: one wins, the others skip."""
    if connection.vendor == "postgresql":
        sql = TAKE_SQL.format(
            table=QueueEntry._meta.db_table, returned=", ".join(f"q.{c}" for c in _RETURNED)
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, {"run_id": run_id, "owner": owner, "lease": lease_seconds})
            row = cursor.fetchone()
        if row is None:
            return None
        return QueueEntry(**dict(zip(_RETURNED, row[:-1], strict=True))), row[-1]
    with transaction.atomic():
        entry = QueueEntry.objects.filter(run_id=run_id).first()
        now = timezone.now()
        if entry is None or not (
            entry.state in (State.READY, State.PARKED)
            or (entry.state == State.LEASED and entry.lease_expires_at and entry.lease_expires_at < now)
        ):
            return None
        previous = entry.state
        _lease_here(entry, owner, now + timedelta(seconds=lease_seconds))
        return entry, previous
