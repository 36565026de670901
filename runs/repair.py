"""Run repair: the steps ``manage.py reconcile`` runs (``observability.reconciler``) so that every run reaches
a terminal state whatever died — a worker, an executor, a commit half-way.

Each step is a function returning how much it did. A step never fights a live lease: it takes a run's queue
entry with ``run_queue.claims.take_over`` (which skips an entry a live lease holds, with ``SKIP LOCKED``, so
several reconcilers can run at once), and every write it makes is fenced by that lease, exactly like a
worker's. A run whose entry it cannot take is left to its holder, which enforces deadlines and cancels
itself; a holder that is stuck stops renewing its lease (``WORKER_STALL_S``) and the run comes back here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import timedelta

import structlog
from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from agents.executor_client import ExecutorClient, ExecutorError, cached_client, config_for
from agents.selectors import executor_by_id
from core import tracing
from run_queue import services as queue
from run_queue.claims import take_over
from run_queue.models import QueueEntry, State
from run_queue.outcomes import Kind
from run_queue.services import LeaseLost, lease_complete
from runs import services
from runs.models import (
    ACTIVE_STATUSES,
    HumanLoopRequest,
    HumanLoopStatus,
    Run,
    RunEvent,
    RunStatus,
    Session,
)
from runs.orchestrator import Attempt, RunHandler, traceparent

logger = structlog.get_logger(__name__)

LEASE_S = 60.0  # the reconciler's own lease on an entry it repairs: a few executor calls at most
EXECUTOR_TIMEOUT_S = 5.0  # a reconciler asks and moves on: one slow executor must not hold up the pass
SETTLE_S = 60.0  # consistency repairs wait this long, so they never race a writer's two statements
LIVE_EXECUTOR_STATES = {"running", "waiting_input"}


@dataclasses.dataclass
class Repair:
    """One reconciler's view: who it is (its lease owner name) and its executor clients."""

    owner: str
    limit: int = 100
    clients: dict[int, ExecutorClient] = dataclasses.field(default_factory=dict)

    # --- deadlines ---------------------------------------------------------------------------------------
    def deadlines(self) -> int:
        """Runs past their deadline (or waiting on a person past its timeout) end ``timed_out``; the
        executor is told to stop."""
        now = timezone.now()
        human_cutoff = now - timedelta(seconds=settings.RUN_HUMAN_TIMEOUT_S)
        overdue = Run.objects.filter(
            Q(status__in=[RunStatus.QUEUED, RunStatus.RUNNING], deadline__lt=now)
            | Q(status=RunStatus.WAITING_HUMAN, waiting_since__lt=human_cutoff)
        )
        return sum(self._time_out(run) for run in self._candidates(overdue))

    @staticmethod
    def _decision(step: str, run: Run):
        """A span in the run's trace around what this step decides for it (``reconcile.decision``)."""
        attributes = {"run.id": str(run.pk), "run.status": run.status}
        return tracing.span(f"reconcile.{step}", parent=traceparent(run), attributes=attributes)

    def _time_out(self, run: Run) -> bool:
        with self._decision("deadline", run):
            return self._time_out_now(run)

    def _time_out_now(self, run: Run) -> bool:
        taken = self._take(run)
        if taken is None:
            return False
        entry, _ = taken
        if run.status != RunStatus.QUEUED or run.executor_seq:
            self._tell_cancel(run)
        waited = run.status == RunStatus.WAITING_HUMAN
        code, message = (
            ("human_timeout", "Nobody answered the run's question in time.")
            if waited
            else ("deadline_exceeded", "The run went past its deadline.")
        )
        return self._finish(run, entry, RunStatus.TIMED_OUT, code, message)

    # --- stalled runs ------------------------------------------------------------------------------------
    def stalled(self) -> int:
        """Running runs no worker has heard of for ``RUN_STALL_S``, with no live lease: asked on their
        executor, then synced and finished, failed (``executor_lost``), timed out (executor unreachable past
        its grace) or handed back to the workers (alive there)."""
        cutoff = timezone.now() - timedelta(seconds=settings.RUN_STALL_S)
        quiet = Run.objects.filter(status=RunStatus.RUNNING).filter(
            Q(synced_at__lt=cutoff) | Q(synced_at__isnull=True, created_at__lt=cutoff)
        )
        return sum(
            self._check_on_executor(run, settings.RUN_STALL_S, "stalled") for run in self._candidates(quiet)
        )

    def stale_sync(self) -> int:
        """Runs waiting on a person whose last word from the executor is older than ``RUN_SYNC_STALE_S``:
        is the executor still waiting too? (A restarted executor forgot them: they would wait for ever.)"""
        cutoff = timezone.now() - timedelta(seconds=settings.RUN_SYNC_STALE_S)
        stale = Run.objects.filter(status=RunStatus.WAITING_HUMAN).filter(
            Q(synced_at__lt=cutoff) | Q(synced_at__isnull=True, created_at__lt=cutoff)
        )
        candidates = self._candidates(stale)
        return sum(
            self._check_on_executor(run, settings.RUN_SYNC_STALE_S, "stale_sync") for run in candidates
        )

    def _check_on_executor(self, run: Run, quiet_s: float, step: str) -> bool:
        with self._decision(step, run):
            return self._check_now(run, quiet_s)

    def _check_now(self, run: Run, quiet_s: float) -> bool:
        taken = self._take(run)
        if taken is None:
            return False
        entry, previous = taken
        client = self._client(run)
        try:
            state = client.get_run(str(run.pk), traceparent=traceparent(run)).data.get("state")
        except ExecutorError as exc:
            if exc.status == 404:
                return self._finish(
                    run, entry, RunStatus.FAILED, "executor_lost", "The executor no longer knows this run."
                )
            return self._unreachable(run, entry, previous, quiet_s, exc)
        if state in LIVE_EXECUTOR_STATES:
            tracing.current().set_attribute("reconcile.decision", "alive")
            _mark_synced(run)
            self._give_back(entry, State.PARKED if state == "waiting_input" else State.READY)
            logger.info("reconcile_run_alive", run_id=str(run.pk), executor_state=state)
            return True
        return self._sync_finished(run, entry, client)

    def _unreachable(self, run: Run, entry: QueueEntry, previous: str, quiet_s: float, exc) -> bool:
        last_heard = run.synced_at or run.created_at
        if timezone.now() - last_heard < timedelta(seconds=quiet_s + settings.RUN_EXECUTOR_GRACE_S):
            tracing.current().set_attributes(
                {"reconcile.decision": "unreachable", "error.type": exc.error_class}
            )
            self._give_back(entry, previous)
            logger.warning("reconcile_executor_unreachable", run_id=str(run.pk), error_class=exc.error_class)
            return False
        return self._finish(
            run, entry, RunStatus.TIMED_OUT, "executor_unreachable", f"The executor stayed unreachable: {exc}"
        )

    def _sync_finished(self, run: Run, entry: QueueEntry, client: ExecutorClient) -> bool:
        """Finished on the executor: store the events we missed (its ``run.finished`` among them), which
        ends the run here, fenced by our lease like a worker's write."""
        handler = RunHandler()
        attempt = Attempt(entry, counted=True)
        log = logger.bind(run_id=str(run.pk), reconciler=self.owner)
        try:
            outcome = handler._follow(run, attempt, client, log)
        except ExecutorError as exc:
            self._give_back(entry, State.READY)
            log.warning("reconcile_sync_failed", error_class=exc.error_class)
            return False
        if outcome.kind != Kind.COMPLETED:
            self._give_back(entry, State.PARKED if outcome.kind == Kind.PARK else State.READY)
        tracing.current().set_attributes({"reconcile.decision": "synced", "queue.outcome": str(outcome.kind)})
        log.info("reconcile_run_synced", outcome=str(outcome.kind))
        return True

    # --- consistency -------------------------------------------------------------------------------------
    def consistency(self) -> int:
        """Repair what a crash or a database error between two commits could leave (each is logged)."""
        return self._dead_entries() + self._done_entries() + self._lost_wakeups() + self._unreleased()

    def _dead_entries(self) -> int:
        """A dead entry under an active run: the run fails with the entry's error."""
        repaired = 0
        for entry in self._settled_entries(State.DEAD):
            code = entry.last_error_class or "dead"
            if services.run_finish(
                run_id=entry.run_id, status=RunStatus.FAILED, code=code, message=entry.last_error_detail
            ):
                logger.warning("reconcile_dead_entry_run_failed", run_id=str(entry.run_id), error_class=code)
                repaired += 1
        return repaired

    def _done_entries(self) -> int:
        """A done entry under an active run: the run goes back to the queue (a worker resumes it from what
        it stored; a run waiting on a person parks again)."""
        repaired = 0
        for entry in self._settled_entries(State.DONE):
            if QueueEntry.objects.filter(pk=entry.pk, state=State.DONE).update(
                state=State.READY, available_at=queue.db_now(), finished_at=None, updated_at=queue.db_now()
            ):
                logger.warning("reconcile_done_entry_reopened", run_id=str(entry.run_id))
                repaired += 1
        return repaired

    def _settled_entries(self, state: State) -> list[QueueEntry]:
        settled = timezone.now() - timedelta(seconds=SETTLE_S)
        active = Run.objects.filter(status__in=ACTIVE_STATUSES).values("pk")
        return list(
            QueueEntry.objects.filter(state=state, updated_at__lt=settled, run_id__in=active)[: self.limit]
        )

    def _lost_wakeups(self) -> int:
        """A run waiting on a person with an answer recorded, whose entry stayed parked: wake it."""
        settled = timezone.now() - timedelta(seconds=SETTLE_S)
        answered = HumanLoopRequest.objects.filter(
            run=OuterRef("run_id"), status=HumanLoopStatus.ANSWERED, answered_at__lt=settled
        )
        parked = (
            QueueEntry.objects.filter(state=State.PARKED)
            .filter(Exists(answered))
            .values_list("run_id", flat=True)
        )
        woken = [run_id for run_id in parked[: self.limit] if queue.entry_unpark(run_id=run_id)]
        for run_id in woken:
            logger.warning("reconcile_answered_run_woken", run_id=str(run_id))
        return len(woken)

    def _unreleased(self) -> int:
        """A run queued behind another in its session, where no run is active any more: release it."""
        settled = timezone.now() - timedelta(seconds=SETTLE_S)
        working = Run.objects.filter(
            session=OuterRef("session"), status__in=[RunStatus.RUNNING, RunStatus.WAITING_HUMAN]
        )
        parked = QueueEntry.objects.filter(state=State.PARKED, updated_at__lt=settled).values("run_id")
        waiting = (
            Run.objects.filter(
                status=RunStatus.QUEUED, executor_seq=0, pk__in=parked, session__queued_runs=True
            )
            .exclude(Exists(working))
            .values_list("session_id", flat=True)
            .distinct()
        )
        sessions = list(waiting[: self.limit])
        for session_id in sessions:
            services.session_release_next(run_id=None, session_id=session_id, queued_runs=True)
            logger.warning("reconcile_session_released", session_id=str(session_id))
        return len(sessions)

    # --- retention ---------------------------------------------------------------------------------------
    def retention(self, *, event_batch: int = 5000) -> int:
        """Delete finished runs older than ``RUN_RETENTION_S`` in bounded batches: their events first (at
        most ``event_batch`` per call), then the runs without events left, their queue entries and the
        sessions left empty; and finished queue entries past ``QUEUE_RETENTION_S``."""
        cutoff = timezone.now() - timedelta(seconds=settings.RUN_RETENTION_S)
        expired = list(Run.objects.filter(finished_at__lt=cutoff).values_list("pk", flat=True)[: self.limit])
        deleted = 0
        if expired:
            events = list(
                RunEvent.objects.filter(run_id__in=expired).values_list("pk", flat=True)[:event_batch]
            )
            deleted += RunEvent.objects.filter(pk__in=events).delete()[0] if events else 0
            emptied = Run.objects.filter(pk__in=expired).exclude(
                Exists(RunEvent.objects.filter(run=OuterRef("pk")))
            )
            emptied_ids = list(emptied.values_list("pk", flat=True))
            QueueEntry.objects.filter(run_id__in=emptied_ids).delete()
            sessions = set(Run.objects.filter(pk__in=emptied_ids).values_list("session_id", flat=True))
            deleted += Run.objects.filter(pk__in=emptied_ids).delete()[0]
            deleted += (
                Session.objects.filter(pk__in=sessions)
                .exclude(Exists(Run.objects.filter(session=OuterRef("pk"))))
                .delete()[0]
            )
        return deleted + queue.entries_prune(limit=event_batch)

    # --- shared ------------------------------------------------------------------------------------------
    def _candidates(self, runs) -> Iterable[Run]:
        return list(runs.order_by("created_at")[: self.limit])

    def _take(self, run: Run) -> tuple[QueueEntry, str] | None:
        return take_over(run_id=run.pk, owner=self.owner, lease_seconds=LEASE_S)

    def _finish(self, run: Run, entry: QueueEntry, status: str, code: str, message: str) -> bool:
        try:
            ended = services.run_finish(
                run_id=run.pk, status=status, code=code, message=message, fence=lambda: lease_complete(entry)
            )
        except LeaseLost:  # our lease ran out while we asked the executor: whoever holds it now decides
            tracing.current().set_attribute("reconcile.decision", "lease_lost")
            logger.warning("reconcile_lease_lost", run_id=str(run.pk))
            return False
        decision: dict[str, str | bool] = {
            "reconcile.decision": f"finish:{status}",
            "error.type": code,
            "run.ended": ended,
        }
        tracing.current().set_attributes(decision)
        logger.warning(
            "reconcile_run_finished", run_id=str(run.pk), status=status, error_class=code, ended=ended
        )
        return ended

    def _give_back(self, entry: QueueEntry, state: str) -> None:
        """Hand a taken entry back to the queue: parked again (an answer that came meanwhile re-queues
        it), or ready at once."""
        if state == State.PARKED:
            queue.entry_park(entry=entry)
        else:
            assert entry.lease_token is not None
            queue.leases_release(lease_tokens=[entry.lease_token], refund_attempt=False)

    def _tell_cancel(self, run: Run) -> None:
        try:
            self._client(run).cancel_run(str(run.pk), traceparent=traceparent(run))
        except ExecutorError as exc:  # gone or unreachable: nothing left to stop there, or nothing we can do
            logger.info("reconcile_cancel_not_delivered", run_id=str(run.pk), error_class=exc.error_class)

    def _client(self, run: Run) -> ExecutorClient:
        executor = executor_by_id(run.executor_id) or run.executor
        config = dataclasses.replace(
            config_for(executor),
            read_timeout_s=EXECUTOR_TIMEOUT_S,
            connect_timeout_s=EXECUTOR_TIMEOUT_S,
            retries=0,
        )
        return cached_client(self.clients, executor.pk, config)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.clients.clear()


def _mark_synced(run: Run) -> None:
    Run.objects.filter(pk=run.pk).update(synced_at=timezone.now())
