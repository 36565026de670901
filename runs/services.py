"""Writes for runs: start, cancel, answer a human-loop request, fail."""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy

from agents import app_settings
from agents.models import Project
from agents.projects import may_work_in, project_not_found
from agents.selectors import executor_for_app
from core import tracing
from core.db import insert_together
from core.errors import Conflict, DomainError, NotFound, TooManyRequests
from run_queue import services as queue
from runs import inbox, streaming
from runs.events import NewEvent, append_events
from runs.models import (
    ACTIVE_STATUSES,
    HumanLoopRequest,
    HumanLoopStatus,
    Run,
    RunEvent,
    RunStatus,
    Session,
)
from runs.validation import check_input_fits


class RunConflict(Conflict):
    code = "run_active"
    message = gettext_lazy("A run is already active in this session.")


class IdempotencyConflict(Conflict):
    code = "idempotency_key_reused"
    message = gettext_lazy("This Idempotency-Key was used for a different request.")


class AmbiguousRequest(DomainError):
    status = 400
    code = "ambiguous_request_id"
    message = gettext_lazy("Several questions have this request_id: give run_id.")


class AlreadyAnswered(Conflict):
    code = "already_answered"
    message = gettext_lazy("This question has already been answered.")


def run_start(
    *,
    user,
    app,
    input: dict[str, Any],
    session_id: uuid.UUID | None = None,
    multitask: str = "reject",
    idempotency_key: str = "",
    priority: int = 0,
    run_id: uuid.UUID | None = None,
    project: Project | None = None,
) -> tuple[Run, bool]:
    """Queue a run of ``app`` for ``user``; returns (run, created). The same Idempotency-Key returns the
    run it created before; a second start in a session with an active run is refused (``reject``) or
    queued behind it (``enqueue``). A new session belongs to ``project`` (one the caller checked the user
    may work in); a continued one stays in its own. The run records its effective settings (secrets by
    name only) and its deadline is lowered by a ``run_deadline_s`` setting (agents.app_settings)."""
    if idempotency_key:
        existing = _run_for_key(user=user, app=app, input=input, key=idempotency_key, project=project)
        if existing is not None:
            return existing, False
    check_active_run_limit(user=user)
    run_id = run_id or uuid.uuid4()
    trace_id = secrets.token_hex(16)
    # The run's root span: its ids are the run's (core.tracing.run_traceparent), so every later hop
    # continues the trace from the run row. Under a request's span (TRACING_INSTRUMENT=django) it is that
    # span's child, and the run takes the request's trace id.
    root_ids = (int(trace_id, 16), run_id.int >> 64)
    attributes = {"run.id": str(run_id), "app": app.slug, "user.id": user.pk}
    try:
        with tracing.span("run.start", ids=root_ids, attributes=attributes) as root:
            with transaction.atomic():
                run = _create_run(
                    user=user,
                    app=app,
                    input=input,
                    session_id=session_id,
                    multitask=multitask,
                    idempotency_key=idempotency_key,
                    priority=priority,
                    run_id=run_id,
                    project=project,
                    trace_id=tracing.log_ids(root).get("trace_id", trace_id),
                )
            root.set_attribute("session.id", str(run.session_id))
        return run, True
    except IntegrityError:
        # A concurrent request with the same key won the race: answer as it did.
        existing = (
            _run_for_key(user=user, app=app, input=input, key=idempotency_key, project=project)
            if idempotency_key
            else None
        )
        if existing is None:
            raise
        return existing, False


class TooManyActiveRuns(TooManyRequests):
    code = "too_many_active_runs"
    message = gettext_lazy("Too many runs are active; wait for one to finish or cancel one.")


def check_active_run_limit(*, user) -> None:
    """Refuse a start while ``user`` has ``RUNS_MAX_ACTIVE_PER_USER`` active runs: one query that stops
    at the limit-th row. Called outside a transaction (``run_start``), concurrent starts of one user can
    pass the limit by up to the number of them in flight (none sees the others' uncommitted runs). Inside
    the transaction that inserts the run it is exact: it first takes a per-user lock held to commit."""
    limit = settings.RUNS_MAX_ACTIVE_PER_USER
    if not limit:
        return
    if connection.in_atomic_block and connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the next statement's snapshot sees the starts before ours
            cursor.execute(ACTIVE_RUNS_LOCK_SQL, [user.pk % 2**31])
    # Written out: it runs on every start, and the ORM's query building cost more than the query, which
    # walks runs_active_user_idx (the user's active runs only).
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_RUNS_SQL, [user.pk, limit - 1])
        if cursor.fetchone() is not None:
            raise TooManyActiveRuns(detail={"limit": limit})


ACTIVE_RUNS_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('runs.active_run_limit'), %s)"
# The statuses are literals, not parameters: a prepared statement's generic plan could not prove that
# parameters match the partial index's condition.
_ACTIVE_RUNS_SQL = (
    "SELECT 1 FROM {table} WHERE user_id = %s AND status IN ({statuses}) LIMIT 1 OFFSET %s".format(  # noqa: S608
        table=Run._meta.db_table, statuses=", ".join(f"'{status}'" for status in ACTIVE_STATUSES)
    )
)


def _run_for_key(*, user, app, input, key: str, project: Project | None) -> Run | None:
    run = Run.objects.filter(user=user, idempotency_key=key).first()
    other_project = project is not None and run is not None and run.project_id != project.pk
    if run is not None and (run.app_id != app.pk or run.input != input or other_project):
        raise IdempotencyConflict(detail={"run_id": str(run.pk)})
    return run


def _create_run(
    *, user, app, input, session_id, multitask, idempotency_key, priority, run_id, project, trace_id
) -> Run:
    session = _session_for(user=user, app=app, session_id=session_id, project=project)
    active = None
    if session_id is not None:  # a session made just now has no runs
        active = (
            Run.objects.filter(session=session, status__in=ACTIVE_STATUSES).order_by("created_at").first()
        )
    if active is not None and multitask == "reject":
        raise RunConflict(detail={"active_run_id": str(active.pk)})
    recorded, effective = app_settings.run_settings(app=app, project_id=session.project_id, user=user)
    check_input_fits(app=app, input=input, app_settings=effective)
    run = Run(
        pk=run_id,
        last_seq=1,
        deadline=timezone.now() + timedelta(seconds=app_settings.run_deadline_s(app, effective)),
        session=session,
        project=project or (session.project if session.project_id else None),
        settings=recorded,
        app=app,
        executor=executor_for_app(app),
        user=user,
        prompt_version_id=app.active_prompt_id,
        input=input,
        trace_id=trace_id,
        idempotency_key=idempotency_key,
    )
    parked = active is not None
    entry = queue.entry_new(run_id=run.pk, priority=priority, parked=parked)
    # The first event needs no lock or projection: nothing else can see the run before this commits.
    queued = RunEvent(run=run, seq=1, type="run.queued", data=queued_event_data(run))
    rows = [run, entry, queued] if session_id is not None else [session, run, entry, queued]
    with tracing.span("queue.enqueue", attributes={"run.id": str(run.pk), "queue.parked": parked}):
        insert_together(rows, notify=None if parked else queue.CHANNEL)
    if parked and not session.queued_runs:  # under the session's row lock (_session_for)
        Session.objects.filter(pk=session.pk).update(queued_runs=True)
    transaction.on_commit(lambda: streaming.publish(run.pk, [queued]))
    return run


def queued_event_data(run: Run) -> dict[str, Any]:
    return {"session_id": str(run.session_id)}


def _session_for(*, user, app, session_id, project: Project | None) -> Session:
    if session_id is None:
        return Session(user=user, app=app, project=project)  # inserted with the run
    # The row lock serialises concurrent starts in one session, so "one active run" holds.
    session = Session.objects.select_for_update().filter(pk=session_id, user=user).first()
    if session is None:
        raise NotFound("No such session.", code="session_not_found")
    if session.app_id != app.pk:
        raise Conflict("This session belongs to another app.", code="session_app_mismatch")
    if project is not None and session.project_id != project.pk:
        raise Conflict(
            "This session belongs to another project (or to none).",
            code="session_project_mismatch",
            detail={"session_project": session.project.slug if session.project else None},
        )
    if project is None and session.project_id is not None and not may_work_in(user, session.project_id):
        raise project_not_found()  # the user left the project's department since
    return session


def run_cancel(*, run: Run) -> Run:
    """Ask for the run to stop. A queued run stops here; a running or waiting one is stopped by the worker,
    which tells the executor. Cancelling a finished run changes nothing."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.is_terminal:
            return run
        Run.objects.filter(pk=run.pk).update(cancel_requested=True)
        if run.status == RunStatus.QUEUED and run.executor_seq == 0 and queue.entry_withdraw(run_id=run.pk):
            run_finish(
                run_id=run.pk,
                status=RunStatus.CANCELLED,
                code="cancelled",
                message="Cancelled before it started.",
            )
        else:
            queue.entry_unpark(run_id=run.pk)  # a parked run wakes so its worker can tell the executor
    run.refresh_from_db()
    return run


def run_finish(
    *, run_id, status: str, code: str = "", message: str = "", fence: Callable[[], None] | None = None
) -> bool:
    """Finish the run here (the executor could not say so itself): one ``run.finished`` event. Returns
    whether this call ended it (False: it had ended already).

    ``fence`` runs under the run's row lock, before anything is written: a worker or a reconciler holding
    the run's queue entry proves its lease there (and completes the entry: ``lease_complete``), so the
    run's end and the queue's commit together, and a holder whose lease moved on writes nothing."""
    data: dict[str, Any] = {"status": status}
    if code:
        data["error"] = {"code": code, "message": message}
    with transaction.atomic():
        # Under the run's row lock: a worker storing the executor's own run.finished cannot slip in between.
        locked = Run.objects.select_for_update().filter(pk=run_id).values_list("status", flat=True).first()
        if fence is not None:
            fence()
        ended = locked in ACTIVE_STATUSES
        if ended:
            append_events(run_id=run_id, events=[NewEvent("run.finished", data)])
    session_release_next(run_id=run_id)
    return ended


def session_release_next(*, run_id, session_id=None, queued_runs: bool | None = None) -> None:
    """When a run ends, let the next run queued behind it in the same session start.

    A start takes the session's row lock to decide whether to queue behind an active run, so this first
    waits on that lock (one statement): afterwards either the start has committed its queued run, or it
    will see this run finished and not queue at all. Most sessions never queued anything
    (``Session.queued_runs``), and then that one statement is all this costs. A worker that locked the
    session's row in the transaction that ended the run passes what it read there as ``queued_runs``,
    which saves that statement."""
    if session_id is None:
        session_id = Run.objects.filter(pk=run_id).values_list("session_id", flat=True).first()
    if queued_runs is None:
        queued_runs = _session_queued_runs(session_id)
    if not queued_runs:
        return
    waiting = (
        Run.objects.filter(session_id=session_id, status=RunStatus.QUEUED, executor_seq=0)
        .exclude(pk=run_id)
        .order_by("created_at")
        .values_list("pk", flat=True)
        .first()
    )
    if (
        waiting is not None
        and not Run.objects.filter(
            session_id=session_id, status__in=[RunStatus.RUNNING, RunStatus.WAITING_HUMAN]
        ).exists()
    ):
        queue.entry_unpark(run_id=waiting)


def _session_queued_runs(session_id) -> bool:
    if connection.vendor == "postgresql":
        # In autocommit the lock lasts for this statement only: it is the wait that matters.
        with connection.cursor() as cursor:
            cursor.execute("SELECT queued_runs FROM runs_session WHERE id = %s FOR UPDATE", [session_id])
            row = cursor.fetchone()
        return bool(row and row[0])
    with transaction.atomic():  # SQLite: BEGIN IMMEDIATE waits for the start's write transaction
        return bool(Session.objects.filter(pk=session_id).values_list("queued_runs", flat=True).first())


def human_loop_reply(
    *, user, request_id: str, answer: str, run_id: uuid.UUID | None = None
) -> HumanLoopRequest:
    """Record a person's answer (once) and wake the run so its worker delivers it to the executor.

    ``request_id`` is the id a client saw: the ``request_id`` of the ``human_loop.request`` event on the
    run's stream (the executor's, unique within its run: give ``run_id``), or the control plane's id from
    the pending list."""
    started_ns = time.time_ns()
    pk = _human_request_pk(user=user, request_id=str(request_id), run_id=run_id)
    with transaction.atomic():
        # The run row first, as every writer of a run does (see runs.events.append_events): no deadlock.
        list(Run.objects.select_for_update(of=("self",)).filter(human_requests__pk=pk).values("pk"))
        request = HumanLoopRequest.objects.select_for_update().filter(pk=pk).select_related("run").first()
        if request is None:
            raise NotFound("No such question.", code="request_not_found")
        if request.status != HumanLoopStatus.PENDING or request.run.is_terminal:
            raise AlreadyAnswered(detail={"status": request.status})
        request.status = HumanLoopStatus.ANSWERED
        request.answer = answer
        request.answered_by = user
        request.answered_at = timezone.now()
        request.save(update_fields=["status", "answer", "answered_by", "answered_at"])
        queue.entry_unpark(run_id=request.run_id)
        owner, run_pk, request_pk = request.run.user_id, request.run_id, request.pk
        transaction.on_commit(
            lambda: inbox.publish_hint(owner, run_id=run_pk, request_id=request_pk, reason="answer")
        )
    tracing.record_span(
        "human.reply",
        parent=tracing.run_traceparent(request.run.trace_id, request.run_id),
        start_ns=started_ns,
        attributes={"run.id": str(run_pk), "human_loop.request_id": str(request_pk), "user.id": user.pk},
    )
    return request


def _human_request_pk(*, user, request_id: str, run_id: uuid.UUID | None) -> uuid.UUID:
    """The question the client means, among those it may see: a 404 for anything else."""
    visible = HumanLoopRequest.objects.filter(run__in=Run.objects.owned_by(user))
    if run_id is not None:
        visible = visible.filter(run_id=run_id)
    by_event = Q(external_id=request_id)
    with contextlib.suppress(ValueError):
        by_event |= Q(pk=uuid.UUID(request_id))
    matches = list(visible.filter(by_event).order_by("-created_at").values_list("pk", "status")[:50])
    if not matches:
        raise NotFound("No such question.", code="request_not_found")
    if len(matches) > 1:
        # The same event id in several runs (a playbook's ids repeat): the open one, if just one is.
        pending = [pk for pk, status in matches if status == HumanLoopStatus.PENDING]
        if len(pending) != 1:
            raise AmbiguousRequest(
                detail={"run_id": ["Give the run that asked: several questions have this id."]}
            )
        return pending[0]
    return matches[0][0]
