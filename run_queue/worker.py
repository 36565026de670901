"""The worker loop: claim batches, run handlers in a thread pool, settle outcomes, renew leases."""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction

from core.shutdown import TwoSignalShutdown
from run_queue import services
from run_queue.claims import claim_batch
from run_queue.handlers import Handler
from run_queue.listener import Listener
from run_queue.models import QueueEntry, State
from run_queue.outcomes import Kind, Outcome

logger = structlog.get_logger(__name__)

NOT_STARTED = None  # result of an entry dropped because the worker was stopping before it began
_SHUTDOWN = object()


class HandlerPool:
    """A fixed set of handler threads. Unlike ThreadPoolExecutor, each thread closes its own database
    connection when the pool shuts down (Django connections are per thread and cannot be closed from
    another), and keeps it open between tasks: reconnecting per run costs ~3x throughput."""

    def __init__(self, size: int, target) -> None:
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.target = target
        self.threads = [
            threading.Thread(target=self._loop, name=f"queue-handler-{i}", daemon=True) for i in range(size)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, entry: QueueEntry) -> None:
        self.tasks.put(entry)

    def _loop(self) -> None:
        try:
            while (entry := self.tasks.get()) is not _SHUTDOWN:
                self.target(entry)
        finally:
            connection.close()

    def shutdown(self, timeout: float) -> None:
        for _ in self.threads:
            self.tasks.put(_SHUTDOWN)
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(deadline - time.monotonic(), 0))


def _drop_broken_connection() -> None:
    """Before each run: close this thread's connection if the last run left it broken or past its age.

    Unlike ``close_old_connections`` this skips the health check's ``SELECT 1`` (``CONN_HEALTH_CHECKS``)
    on a connection that saw no error: a round trip per run, ~5% of a worker's CPU on short runs. A
    connection that broke while idle fails the next run's first query; that attempt is retried and the
    error makes the following check test and replace the connection."""
    connection.close_if_unusable_or_obsolete()
    connection.health_check_done = True  # type: ignore[attr-defined]  # Django ≥ 4.1, not in the stubs


@dataclass
class WorkerOptions:
    concurrency: int = 8
    batch: int = 50
    lease_seconds: float = 30.0
    poll_seconds: float = 1.0
    grace_seconds: float = 30.0
    max_runs: int | None = None
    prune_every_seconds: float = 300.0
    stall_seconds: float = 300.0  # a handler that shows no progress this long stops having its lease renewed

    @classmethod
    def from_settings(cls, **overrides) -> WorkerOptions:
        values: dict[str, Any] = {
            "concurrency": settings.WORKER_CONCURRENCY,
            "batch": settings.WORKER_BATCH,
            "lease_seconds": settings.QUEUE_LEASE_S,
            "poll_seconds": settings.QUEUE_POLL_S,
            "grace_seconds": settings.WORKER_SHUTDOWN_GRACE_S,
            "stall_seconds": settings.WORKER_STALL_S,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


class Worker(TwoSignalShutdown):
    def __init__(self, *, handler: Handler, options: WorkerOptions, worker_id: str | None = None) -> None:
        self.handler = handler
        self.options = options
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = threading.Event()
        self.wakeup = threading.Event()
        self.notified = threading.Event()  # the listener heard of new work since the last claim
        self._listening = False
        self._more_waiting = True  # the last claim filled its batch: more may be ready
        self._last_claim = 0.0
        self.results: queue.SimpleQueue[tuple[QueueEntry, Outcome | None]] = queue.SimpleQueue()
        self.in_hand: dict[uuid.UUID, QueueEntry] = {}
        self.claimed = 0
        self.settled = 0
        self.abandoned = 0  # handler threads still running when the grace period ran out
        self._last_prune = time.monotonic()
        self._settling = threading.Lock()
        self.log = logger.bind(worker_id=self.worker_id)

    # --- lifecycle ------------------------------------------------------------------------------------
    def on_first_signal(self, name: str) -> None:
        self.log.info("worker_stopping", signal=name, in_hand=len(self.in_hand))

    def stop(self) -> None:
        self.stopping.set()
        self.wakeup.set()

    def run(self) -> None:
        """Claim and run until stopped (or ``max_runs`` are settled); then finish the work in hand."""
        self.log.info("worker_started", concurrency=self.options.concurrency, batch=self.options.batch)
        helpers = [threading.Thread(target=self._heartbeat, name="queue-heartbeat", daemon=True)]
        if connection.vendor == "postgresql":
            helpers.append(Listener(wakeup=self.wakeup, notified=self.notified, stopping=self.stopping))
            self._listening = True
        for thread in helpers:
            thread.start()
        pool = HandlerPool(self.options.concurrency, self._run_in_thread)
        try:
            while not self.stopping.is_set() and not self._reached_max_runs():
                busy = self._guarded(
                    lambda: self.settle() + (self.claim_into(pool) if self._claim_due() else 0)
                )
                self._guarded(self.prune_if_due)
                if not busy:
                    self.wakeup.wait(self.options.poll_seconds)
                    self.wakeup.clear()
        finally:
            self._drain(pool)
            self.stopping.set()
            for thread in helpers:
                thread.join(timeout=5)
            connection.close()
        self.log.info("worker_stopped", claimed=self.claimed, settled=self.settled)

    def _reached_max_runs(self) -> bool:
        limit = self.options.max_runs
        return limit is not None and self.settled >= limit

    def _guarded(self, step) -> int:
        """Run one loop step; a database outage is logged and waited out, never fatal."""
        try:
            _drop_broken_connection()
            return step()
        except DatabaseError as exc:
            self.log.warning("worker_database_error", error=str(exc)[:300])
            connection.close()
            self.stopping.wait(1.0)
            return 0

    def _claim_due(self) -> bool:
        """Whether this round claims. Without a listener, always (polling). With one: when it heard of new
        work, when the last claim filled its batch (more may be ready), and at least every
        ``poll_seconds`` (a retry whose backoff ended, or an expired lease, announces itself to nobody).
        Not after every finished run: under load that was a second claim statement per run, which found
        nothing, since each new run's notification had already been answered."""
        if not self._listening or self._more_waiting or self.notified.is_set():
            self.notified.clear()  # before the claim: a notification during it makes another
            return True
        return time.monotonic() - self._last_claim >= self.options.poll_seconds

    # --- steps (each returns how much it did) ---------------------------------------------------------
    def claim_into(self, pool: HandlerPool) -> int:
        # No more leases than threads free to start them now: a lease waiting in the pool is renewed while
        # its run waits, and other workers sit idle.
        room = self.options.concurrency - len(self.in_hand)
        if self.options.max_runs is not None:
            room = min(room, self.options.max_runs - self.claimed)
        limit = min(room, self.options.batch)
        self._last_claim = time.monotonic()
        entries = self.claim(limit)
        self._more_waiting = len(entries) >= limit
        for entry in entries:
            pool.submit(entry)
        return len(entries)

    def claim(self, limit: int) -> list[QueueEntry]:
        entries = claim_batch(owner=self.worker_id, limit=limit, lease_seconds=self.options.lease_seconds)
        for entry in entries:
            assert entry.lease_token is not None
            entry.touch()
            self.in_hand[entry.lease_token] = entry
            # DEBUG: the attempt's start and its outcome (queue_settled) are the INFO lines of a run.
            self.log.debug("queue_claimed", run_id=str(entry.run_id), attempt=entry.attempts)
        self.claimed += len(entries)
        return entries

    def step(self) -> int:
        """One synchronous round (``--once`` and tests): claim a batch, run each entry here, settle."""
        entries = self.claim(self.options.batch)
        for entry in entries:
            self.results.put((entry, self.process(entry)))
        self.settle()
        return len(entries)

    def process(self, entry: QueueEntry) -> Outcome:
        if entry.attempts > entry.max_attempts:
            # Its last attempt died with its worker (the lease expired): no attempt left to run.
            return Outcome.retry("lease_expired", "the worker holding the run stopped before finishing")
        try:
            return self.handler.handle(entry)
        except Exception as exc:
            self.log.exception("queue_handler_raised", run_id=str(entry.run_id), attempt=entry.attempts)
            return Outcome.retry("exception", f"{type(exc).__name__}: {exc}")

    def _run_in_thread(self, entry: QueueEntry) -> None:
        if self.stopping.is_set():
            self.results.put((entry, NOT_STARTED))
        else:
            _drop_broken_connection()
            self.results.put((entry, self.process(entry)))
        self.wakeup.set()

    def settle(self) -> int:
        """Write the outcomes that handlers produced: all successes in one statement, the rest one by one."""
        finished: list[tuple[QueueEntry, Outcome | None]] = []
        while True:
            try:
                finished.append(self.results.get_nowait())
            except queue.Empty:
                break
        if not finished:
            return 0
        try:
            with self._settling:
                self._write_outcomes(finished)
        except DatabaseError:
            for item in finished:  # keep them; the next round writes them
                self.results.put(item)
            raise
        return len(finished)

    def _write_outcomes(self, finished: list[tuple[QueueEntry, Outcome | None]]) -> None:
        unstarted = [entry for entry, outcome in finished if outcome is NOT_STARTED]
        done = [entry for entry, outcome in finished if outcome is not None and outcome.kind == Kind.DONE]
        completed = services.entries_complete(entries=done)
        if unstarted:
            tokens = [e.lease_token for e in unstarted if e.lease_token is not None]
            services.leases_release(lease_tokens=tokens, refund_attempt=True)
        for entry in done:
            self._log_outcome(entry, "done" if entry.pk in completed else "lease_lost")
        for entry, outcome in finished:
            if outcome is None:
                continue
            if outcome.kind == Kind.COMPLETED:
                self._log_outcome(entry, "done")
            elif outcome.kind != Kind.DONE:
                self._settle_one(entry, outcome)
        for entry, _ in finished:
            self.in_hand.pop(entry.lease_token, None)  # type: ignore[arg-type]
        self.settled += len(finished) - len(unstarted)

    def _settle_one(self, entry: QueueEntry, outcome: Outcome) -> None:
        state: State | None
        if outcome.kind == Kind.PARK:
            state = State.PARKED if services.entry_park(entry=entry) else None
        else:
            # The entry's death and the domain's reaction commit together: a crash or a database error
            # between two commits left a dead entry under a run that stayed active for ever.
            with transaction.atomic():
                if outcome.kind == Kind.FAIL:
                    dead = services.entry_mark_dead(
                        entry=entry, error_class=outcome.error_class, detail=outcome.error_detail
                    )
                    state = State.DEAD if dead else None
                else:
                    state = services.entry_retry(
                        entry=entry, error_class=outcome.error_class, detail=outcome.error_detail
                    )
                if state == State.DEAD:
                    self.handler.on_dead(entry)
        self._log_outcome(entry, state or "lease_lost", outcome)

    def _log_outcome(self, entry: QueueEntry, result: str, outcome: Outcome | None = None) -> None:
        extra = {"error_class": outcome.error_class} if outcome and outcome.error_class else {}
        self.log.info(
            "queue_settled", run_id=str(entry.run_id), attempt=entry.attempts, result=str(result), **extra
        )

    def prune_if_due(self) -> int:
        if time.monotonic() - self._last_prune < self.options.prune_every_seconds:
            return 0
        self._last_prune = time.monotonic()
        pruned = services.entries_prune()
        if pruned:
            self.log.info("queue_pruned", deleted=pruned)
        return pruned

    # --- background -----------------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        interval = self.options.lease_seconds / 3
        while not self.stopping.wait(interval):
            self.renew_leases()
        connection.close()

    def renew_leases(self) -> int:
        # Not while outcomes are written: an entry settled between our snapshot and the renewal would
        # look lost.
        with self._settling:
            tokens = self._progressing()
            try:
                close_old_connections()
                held = services.leases_renew(lease_tokens=tokens)
                lost = [e for token in set(tokens) - held if (e := self.in_hand.get(token)) is not None]
                # A handler that completed its entry itself (Outcome.completed) no longer holds the lease
                # and stays in hand until its outcome is read: that is not a loss.
                finished = services.entries_done(ids=[entry.pk for entry in lost]) if lost else set()
            except DatabaseError as exc:
                self.log.warning("lease_renewal_failed", error=str(exc)[:300])
                connection.close()
                return 0
        for entry in lost:
            if entry.pk not in finished:
                self.log.warning("lease_lost", run_id=str(entry.run_id), attempt=entry.attempts)
        return len(held)

    def _progressing(self) -> list[uuid.UUID]:
        """The leases worth renewing: those whose handler showed progress within ``stall_seconds``. A
        handler stuck for good (a silent executor that still keeps its connection open, a hung call) must
        not keep its run for ever: its lease runs out, another worker or the reconciler takes the run, and
        the stuck handler's writes are fenced out."""
        cutoff = time.monotonic() - self.options.stall_seconds
        tokens = []
        for token, entry in list(self.in_hand.items()):
            if entry.progressed_at >= cutoff:
                tokens.append(token)
            elif not entry.stall_logged:
                entry.stall_logged = True
                self.log.warning(
                    "lease_not_renewed_stalled", run_id=str(entry.run_id), attempt=entry.attempts
                )
        return tokens

    def _drain(self, pool: HandlerPool) -> None:
        """Finish the work in hand within the grace period, then hand back whatever is still running."""
        deadline = time.monotonic() + self.options.grace_seconds
        while self.in_hand and time.monotonic() < deadline:
            self._guarded(self.settle)
            if self.in_hand:
                self.wakeup.wait(0.05)
                self.wakeup.clear()
        if self.in_hand:
            self.log.warning("worker_releasing_unfinished", count=len(self.in_hand))
            self.abandoned = len(self.in_hand)
            self._guarded(
                lambda: services.leases_release(lease_tokens=list(self.in_hand), refund_attempt=False)
            )
            self.in_hand.clear()
        pool.shutdown(timeout=0 if self.abandoned else 5)
