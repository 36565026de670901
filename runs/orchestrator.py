"""The queue handler for runs: drives one run on its executor, one attempt per claim.

An attempt starts the run (idempotent by run id), delivers answers and cancels that arrived while it was
parked, then follows the executor's event stream from ``executor_seq``, storing each received batch in one
transaction fenced by the lease. It parks on ``human_loop.request`` and ends on ``run.finished``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone

from agents.app_settings import settings_for_executor
from agents.executor_client import ExecutorClient, ExecutorError, ExecutorEvent, client_for
from agents.plugins import registry, tokens
from agents.selectors import app_by_id, executor_by_id, prompt_payload
from core import tracing
from core.db import select_list, update_fields
from run_queue.models import QueueEntry, lease_held_sql
from run_queue.outcomes import Outcome
from run_queue.services import LeaseLost, lease_complete, lease_fence
from runs import services
from runs.events import NewEvent, append_events
from runs.models import HumanLoopRequest, HumanLoopStatus, Run, RunStatus, Session
from runs.protocol import ProtocolViolation, checked

logger = structlog.get_logger(__name__)

CHECK_EVERY_S = 1.0  # a followed run's cancel and deadline are looked at this often (and on keep-alives)
SYNC_TOUCH_S = 30.0  # a quiet executor's keep-alives mark the run synced at most this often
MAX_RESUMES = 20


@dataclass
class Follow:
    """What one read of the executor's stream carried, for its span."""

    after: int
    batches: int = 0
    received: int = 0
    keepalives: int = 0

    def attributes(self) -> dict[str, int]:
        return {
            "events.received": self.received,
            "events.batches": self.batches,
            "events.keepalives": self.keepalives,
        }


@dataclass
class Attempt:
    """One claim of a run. The attempt is recorded (``Run.attempts`` := the queue entry's count) by its
    first write of events, in the same statement; an attempt that writes none records it on its way out."""

    entry: QueueEntry
    counted: bool = False
    completed: bool = False  # the queue entry was marked done with the run's last write
    next_check: float = 0.0
    next_touch: float = 0.0
    cancel_sent: bool = False


class RunHandler:
    def handle(self, entry: QueueEntry) -> Outcome:
        run = _run(entry.run_id)
        if run is None or run.is_terminal:
            return Outcome.done()
        # Shared, read-only copies kept for CONFIG_CACHE_S (agents.selectors), not a join per run.
        run.app = app_by_id(run.app_id) or run.app
        run.executor = executor_by_id(run.executor_id) or run.executor
        attempt = Attempt(entry)
        root = traceparent(run)
        attributes: dict[str, str | int] = {"run.id": str(run.pk), "queue.attempt": entry.attempts}
        if entry.available_at is not None:  # the wait for a worker, as a span of its own
            waited_from = int(entry.available_at.timestamp() * 1e9)
            tracing.record_span("queue.claim", parent=root, start_ns=waited_from, attributes=attributes)
        try:
            with tracing.span("run.drive", parent=root, attributes=attributes) as drive:
                outcome = self._handle(run, attempt)
                drive.set_attribute("queue.outcome", str(outcome.kind))
                if outcome.error_class:
                    tracing.mark_error(drive, outcome.error_class, outcome.error_detail or "")
                return outcome
        finally:
            if not attempt.counted:
                Run.objects.filter(pk=run.pk).update(attempts=entry.attempts)

    def _handle(self, run: Run, attempt: Attempt) -> Outcome:
        entry = attempt.entry
        ids = {
            "run_id": str(run.pk),
            "trace_id": run.trace_id,
            "session_id": str(run.session_id),
            "user_id": run.user_id,
            "executor_id": run.executor.name,
        }
        log = logger.bind(attempt=entry.attempts)
        structlog.contextvars.bind_contextvars(**ids)
        try:
            return self._attempt(run, attempt, client_for(run.executor), log)
        except ExecutorError as exc:
            log.warning(
                "run_attempt_failed",
                error_class=exc.error_class,
                status=exc.status,
                retryable=exc.retryable,
                executor_attempts=exc.attempts,
            )
            if exc.code == ProtocolViolation.code:
                return Outcome.fail(ProtocolViolation.code, str(exc))
            if exc.retryable:
                return Outcome.retry(exc.error_class, str(exc))
            return Outcome.fail(exc.error_class, str(exc))
        except ProtocolViolation as exc:
            log.warning("run_protocol_error", error=str(exc)[:300])
            return Outcome.fail(exc.code, str(exc))
        except LeaseLost:
            log.warning("run_lease_lost")
            return Outcome.retry("lease_lost", "another worker took the run over")
        finally:
            structlog.contextvars.unbind_contextvars(*ids)

    def on_dead(self, entry: QueueEntry) -> None:
        """Out of attempts, or failed permanently: the run fails with the error's class. The worker calls
        this in the transaction that marks the entry dead."""
        fresh = QueueEntry.objects.filter(pk=entry.pk).values("last_error_class", "last_error_detail").first()
        error = fresh or {"last_error_class": "unknown", "last_error_detail": ""}
        services.run_finish(
            run_id=entry.run_id,
            status=RunStatus.FAILED,
            code=error["last_error_class"] or "unknown",
            message=error["last_error_detail"],
        )

    # --- one attempt ------------------------------------------------------------------------------------
    def _attempt(self, run: Run, attempt: Attempt, client: ExecutorClient, log) -> Outcome:
        if run.cancel_requested:
            return self._cancel(run, attempt, client, log)
        if past_deadline(run):
            return self._time_out(run, attempt, client, log)
        if run.status == RunStatus.QUEUED:
            reply = client.start_run(
                run_id=str(run.pk),
                app=run.app.slug,
                prompt=prompt_payload(run.prompt_version_id),
                input=run.input,
                agent=run.app.agent_spec(),
                settings=settings_for_executor(
                    app=run.app, project_id=run.project_id, user_id=run.user_id, recorded=run.settings
                ),
                traceparent=traceparent(run),
                **tools_for(run),
            )
            log.info("run_started_on_executor", executor_attempts=reply.attempts)
        # Answers exist only for a run that asked. Claimed again while it waits with none (an operator's
        # retry, a park lost to a crash), it parks: the executor is waiting on a person too, so following
        # it would only hold a thread and a lease while the answer could not reach it.
        if run.status == RunStatus.WAITING_HUMAN and not self._deliver_answers(run, client, log):
            return Outcome.park()
        return self._follow(run, attempt, client, log)

    def _deliver_answers(self, run: Run, client: ExecutorClient, log) -> int:
        answered = HumanLoopRequest.objects.filter(run=run, status=HumanLoopStatus.ANSWERED)
        delivered = 0
        for request in answered:
            client.send_input(
                str(run.pk),
                request_id=request.external_id,
                answer=request.answer,
                traceparent=traceparent(run),
            )
            HumanLoopRequest.objects.filter(pk=request.pk, status=HumanLoopStatus.ANSWERED).update(
                status=HumanLoopStatus.DELIVERED, delivered_at=timezone.now()
            )
            delivered += 1
            log.info("human_answer_delivered", request_id=str(request.pk))
        return delivered

    def _cancel(self, run: Run, attempt: Attempt, client: ExecutorClient, log) -> Outcome:
        try:
            client.cancel_run(str(run.pk), traceparent=traceparent(run))
        except ExecutorError as exc:
            if exc.status != 404:  # an executor that never heard of the run has nothing to stop
                raise
            return self._finish_here(run, attempt, RunStatus.CANCELLED, "cancelled", "Cancelled.")
        log.info("run_cancel_sent")
        attempt.cancel_sent = True
        return self._follow(run, attempt, client, log)

    def _time_out(self, run: Run, attempt: Attempt, client: ExecutorClient, log) -> Outcome:
        """Past its deadline: tell the executor to stop (it may be gone: that is no reason to wait), then
        end the run here, ``timed_out``."""
        try:
            client.cancel_run(str(run.pk), traceparent=traceparent(run))
        except ExecutorError as exc:
            log.warning("run_deadline_cancel_failed", error_class=exc.error_class, status=exc.status)
        log.info("run_deadline_exceeded")
        return self._finish_here(
            run, attempt, RunStatus.TIMED_OUT, "deadline_exceeded", "The run went past its deadline."
        )

    def _finish_here(self, run: Run, attempt: Attempt, status: str, code: str, message: str) -> Outcome:
        services.run_finish(
            run_id=run.pk,
            status=status,
            code=code,
            message=message,
            fence=lambda: lease_complete(attempt.entry),
        )
        attempt.counted = attempt.completed = True
        return Outcome.completed()

    def _follow(self, run: Run, attempt: Attempt, client: ExecutorClient, log) -> Outcome:
        """Store the executor's events until the run parks or ends; resume a cut stream where it broke."""
        resumes = 0
        while True:
            consumed_before = run.executor_seq
            try:
                return self._consume(run, attempt, client, log)
            except ExecutorError as exc:
                progressed = run.executor_seq > consumed_before
                if exc.error_class != "network" or not progressed or resumes >= MAX_RESUMES:
                    raise
                resumes += 1
                log.info("run_stream_resumed", after=run.executor_seq, error=str(exc)[:200])

    def _consume(self, run: Run, attempt: Attempt, client: ExecutorClient, log) -> Outcome:
        """Follow the stream under one span that counts what it carried (not a span per event)."""
        follow = Follow(after=run.executor_seq)
        with tracing.span(
            "run.follow", attributes={"run.id": str(run.pk), "events.after": follow.after}
        ) as span:
            try:
                return self._consume_counted(run, attempt, client, log, follow)
            finally:
                span.set_attributes(follow.attributes())

    def _consume_counted(
        self, run: Run, attempt: Attempt, client: ExecutorClient, log, follow: Follow
    ) -> Outcome:
        attempt.next_check = time.monotonic() + CHECK_EVERY_S
        batches = client.iter_event_batches(
            str(run.pk), after=run.executor_seq, traceparent=traceparent(run), keepalives=True
        )
        with contextlib.closing(batches):
            for batch in batches:
                attempt.entry.touch()  # heard from the executor: the lease is worth renewing
                if batch:
                    follow.batches += 1
                    follow.received += len(batch)
                    run = self._store(run, attempt, batch)
                    if run.is_terminal:
                        services.session_release_next(
                            run_id=run.pk, session_id=run.session_id, queued_runs=run.session_queued_runs
                        )
                        return Outcome.completed() if attempt.completed else Outcome.done()
                    if run.status == RunStatus.WAITING_HUMAN and not self._deliver_answers(run, client, log):
                        # A reply that lands after this check wakes the parked entry again (wake_requested).
                        return Outcome.park()
                else:
                    follow.keepalives += 1
                    _touch_synced(run, attempt)
                if time.monotonic() > attempt.next_check:
                    attempt.next_check = time.monotonic() + CHECK_EVERY_S
                    if past_deadline(run):
                        return self._time_out(run, attempt, client, log)
                    if _cancel_due(run, attempt):
                        client.cancel_run(str(run.pk), traceparent=traceparent(run))
        raise ExecutorError("network", "the event stream ended before the run finished")

    @staticmethod
    def _store(run: Run, attempt: Attempt, batch: list[ExecutorEvent]) -> Run:
        """One transaction per received batch, fenced by the lease. The batch that ends the run also marks
        the queue entry done, and locks the session's row (see ``services.session_release_next``)."""
        events = [NewEvent(e.type, e.data) for e in batch if checked(e.seq, e.type, e.data)]
        finishing = batch[-1].terminal
        with transaction.atomic():
            locked = lock_for_write(run.pk, attempt.entry, finishing=finishing)
            stored, _ = append_events(
                run_id=run.pk,
                locked=locked,
                events=events,
                executor_seq=batch[-1].seq,
                attempts=None if attempt.counted else attempt.entry.attempts,
            )
            if finishing and stored.is_terminal:
                lease_complete(attempt.entry)
                attempt.completed = True
            elif finishing:  # a run that something else ended first (a reconciler, a deadline)
                lease_fence(attempt.entry)
        attempt.counted = True
        return stored


def _run(run_id) -> Run | None:
    """The run, read with one statement written here: for every claimed run, the ORM's query building cost
    more than the query (core.db.update_fields)."""
    pk = Run._meta.pk.get_db_prep_value(run_id, connection)
    sql = _READ.format(columns=select_list(Run, "r"), run=Run._meta.db_table)
    return next(iter(Run.objects.raw(sql, [pk])), None)


def lock_for_write(run_id, entry: QueueEntry, *, finishing: bool) -> Run:
    """Lock the run's row for a write of this attempt, in one statement on PostgreSQL.

    Usually together with the queue entry's row, which proves the lease (``lease_fence``: the row lock
    makes a takeover wait for this transaction). For the run's last write, together with its session's
    row instead, read into ``session_queued_runs``; the caller then fences with ``lease_complete``.
    Rows are locked in the statement's table order — the run first, as every writer of a run does.
    """
    if connection.vendor != "postgresql":  # SQLite: one writer at a time, the same in three statements
        run = Run.objects.select_for_update().get(pk=run_id)
        if finishing:
            run.session_queued_runs = (
                Session.objects.filter(pk=run.session_id).values_list("queued_runs", flat=True).first()
            )
        else:
            lease_fence(entry)
        return run
    tables = {
        "run": Run._meta.db_table,
        "session": Session._meta.db_table,
        "entry": QueueEntry._meta.db_table,
        "columns": select_list(Run, "r"),
        "lease_held": lease_held_sql("q"),
    }
    if finishing:
        query = Run.objects.raw(_LOCK_WITH_SESSION.format(**tables), [run_id])
    else:
        params = [run_id, entry.pk, entry.lease_token]
        query = Run.objects.raw(_LOCK_WITH_LEASE.format(**tables), params)
    locked = next(iter(query), None)
    if locked is None:
        raise LeaseLost()  # the lease moved on (or the run is gone: the next attempt finds out)
    return locked


_READ = "SELECT {columns} FROM {run} r WHERE r.id = %s"
_LOCK_WITH_LEASE = """
    SELECT {columns} FROM {run} r JOIN {entry} q ON q.run_id = r.id
     WHERE r.id = %s AND {lease_held}
       FOR UPDATE OF r, q
"""
_LOCK_WITH_SESSION = """
    SELECT {columns}, s.queued_runs AS session_queued_runs
      FROM {run} r JOIN {session} s ON s.id = r.session_id
     WHERE r.id = %s
       FOR UPDATE OF r, s
"""


def past_deadline(run: Run) -> bool:
    """Whether the run is past its deadline (a run waiting on a person has its own timeout: the
    reconciler's)."""
    return (
        run.deadline is not None and run.status != RunStatus.WAITING_HUMAN and timezone.now() >= run.deadline
    )


def _touch_synced(run: Run, attempt: Attempt) -> None:
    """A keep-alive: the executor is there and quiet. Record it now and then, so the reconciler does not
    take a quiet run for a stalled one."""
    if time.monotonic() < attempt.next_touch:
        return
    attempt.next_touch = time.monotonic() + SYNC_TOUCH_S
    update_fields(Run, where={"id": run.pk}, values={"synced_at": timezone.now()})


def _cancel_due(run: Run, attempt: Attempt) -> bool:
    """Whether a cancel was asked for and not yet passed on in this attempt. ``run`` is as the last
    stored batch read it under lock; with none stored lately, the flag is read afresh."""
    if attempt.cancel_sent:
        return False
    if not run.cancel_requested:
        run.cancel_requested = bool(
            Run.objects.filter(pk=run.pk).values_list("cancel_requested", flat=True).first()
        )
    attempt.cancel_sent = bool(run.cancel_requested)
    return attempt.cancel_sent


def tools_for(run: Run) -> dict:
    """The start request's ``plugins`` and ``tool_gateway``: the app's declared plugins that this process
    has enabled, with a token for them that expires with the run. None without ``TOOL_GATEWAY_URL``."""
    declared = [name for name in run.app.plugins or [] if registry.get(name) is not None]
    if not declared or not django_settings.TOOL_GATEWAY_URL:
        return {}
    expires = run.deadline or timezone.now() + timedelta(seconds=django_settings.TOOL_TOKEN_TTL_S)
    token = tokens.mint(run_id=run.pk, plugins=declared, expires_at=expires)
    return {
        "plugins": [registry.plugins()[name].spec() for name in declared],
        "tool_gateway": {
            "url": f"{django_settings.TOOL_GATEWAY_URL}/api/runs/{run.pk}/tools",
            "token": token,
        },
    }


def traceparent(run: Run) -> str:
    """The W3C trace context of the run's root span: every hop of the run continues its trace (an executor
    call sends its own span's context instead when tracing is on: ``agents.executor_client``)."""
    return tracing.run_traceparent(run.trace_id, run.pk)
