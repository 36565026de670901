"""Reads that several callers share."""

from __future__ import annotations

from django.db.models import QuerySet

from agents.access import apps_for
from agents.models import Action
from runs.models import Run, RunEvent, Session


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


def may_read(user, run: Run | Session) -> bool:
    """Whether ``user`` may read ``run`` (or a session, whose runs are its owner's, of its app): as
    ``Run.objects.visible_to``, without a query for their own."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser or run.user_id == user.pk:
        return True
    return apps_for(user, Action.RUN_VIEW_ALL).filter(pk=run.app_id).exists()


def readable_run(user, run_id, *, related: tuple[str, ...] = ()) -> Run | None:
    """The run if ``user`` may read it, else None (the caller answers 404, as for a missing run)."""
    run = Run.objects.select_related(*related).filter(pk=run_id).first()
    return run if run is not None and may_read(user, run) else None


def readable_session(user, session_id) -> Session | None:
    """The session if ``user`` may read it (by ``may_read``'s rule: a session's runs are all its owner's, of
    its app), else None: the caller answers 404, as for a missing one."""
    session = Session.objects.select_related("app", "project", "user").filter(pk=session_id).first()
    return session if session is not None and may_read(user, session) else None
