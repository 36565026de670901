"""The agent-status monitor: what each enabled executor says its agents are doing (``GET /v1/agents``),
debounced, with a history of changes and an ``agent_status`` event on the ``agents`` channel for each.

One pass (``AgentStatusMonitor.agent_status``, a step of ``manage.py reconcile``) polls every enabled
executor at once, each call bounded by ``AGENT_STATUS_TIMEOUT_S`` with no retries, so a dead executor
costs the pass one timeout, not one per executor. Then, per executor, one transaction:

* an observed state replaces the stored one only after ``AGENT_STATUS_DEBOUNCE`` equal observations in a
  row (``pending_state``, ``pending_count``); a new agent starts ``unknown`` and takes as many;
* an agent missing from the listing of an executor that answered is observed ``idle`` (the reference
  executor lists an agent only while it holds runs of it), so it turns idle after as many polls;
* an executor that fails a poll counts it (``ExecutorHealth.failed_polls``); after as many failures in a
  row its agents turn ``offline`` at once, with the error as their detail.

Two reconcilers may run at once: each takes an executor's health row ``FOR UPDATE SKIP LOCKED`` (so one
applies a poll while the other skips it) and an executor polled less than half an interval ago is left
alone, so polls are not counted twice. Change rows are inserted under one transaction-level advisory lock,
so their ids are committed in increasing order and a stream that has sent id N can never be handed a
smaller one later (``observability.agent_stream``).
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from agents.executor_client import ExecutorClient, ExecutorError, cached_client, config_for
from agents.models import AgentState, AgentStatus, AgentStatusChange, Executor, ExecutorHealth
from agents.selectors import default_executor
from runs import live
from runs.streaming import encode

logger = structlog.get_logger(__name__)

CHANNEL = "agents"
EVENT = "agent_status"
MAX_WORKERS = 8
DETAIL_CHARS = 300
NOT_LISTED = "not listed by its executor"
# pg_advisory_xact_lock's key for inserting AgentStatusChange rows (any constant unique to this lock).
CHANGES_LOCK = 0x4147_5354  # "AGST"
OBSERVABLE = {AgentState.IDLE, AgentState.BUSY, AgentState.WAITING_INPUT, AgentState.ERROR}


@dataclass(frozen=True)
class Observation:
    app: str
    state: str
    detail: str


@dataclass(frozen=True)
class Poll:
    """One executor's answer: its agents by id, or the error that stood in for them."""

    agents: dict[str, Observation] | None = None
    error: str = ""


def parse_listing(data: Any) -> dict[str, Observation]:
    """``GET /v1/agents`` as {agent_id: Observation}; a state the protocol does not define is ``unknown``.
    A listing that is not a list of objects with an ``agent_id`` is the executor's fault: ``ValueError``."""
    if not isinstance(data, list):
        raise ValueError("GET /v1/agents: the reply is not a list")
    agents: dict[str, Observation] = {}
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("agent_id"), str) or not entry["agent_id"]:
            raise ValueError("GET /v1/agents: an entry has no agent_id")
        state = entry.get("state")
        agents[entry["agent_id"][:200]] = Observation(
            app=str(entry.get("app") or "")[:100],
            state=state if state in OBSERVABLE else AgentState.UNKNOWN,
            detail=str(entry.get("detail") or "")[:DETAIL_CHARS],
        )
    return agents


def observe(status: AgentStatus, state: str, detail: str, now: datetime, debounce: int) -> str | None:
    """Count one observation of ``state`` into ``status`` (unsaved). Returns the previous state when the
    stored state changed, else None. An observation of the stored state resets what was pending."""
    status.observed_at = now
    if state == status.state:
        status.pending_state, status.pending_count = "", 0
        status.detail = detail
        return None
    if status.pending_state == state:
        status.pending_count += 1
    else:
        status.pending_state, status.pending_count = state, 1
    if status.pending_count < debounce:
        return None
    previous = status.state
    status.state, status.detail, status.since = state, detail, now
    status.pending_state, status.pending_count = "", 0
    return previous


def event_data(change: AgentStatusChange, status: AgentStatus, executor: Executor) -> dict[str, Any]:
    """What an ``agent_status`` event carries, live and replayed alike."""
    return {
        "executor": executor.name,
        "executor_id": executor.pk,
        "status_id": status.pk,
        "agent_id": status.agent_id,
        "app": status.app,
        "state": change.state,
        "previous": change.previous,
        "detail": change.detail,
        "since": change.at,
    }


def history_after(after: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
    """Up to ``limit`` changes with ids above ``after``, oldest first, as (id, event data)."""
    changes = (
        AgentStatusChange.objects.filter(pk__gt=after)
        .select_related("status__executor")
        .order_by("pk")[:limit]
    )
    return [(change.pk, event_data(change, change.status, change.status.executor)) for change in changes]


def last_change_id() -> int:
    return AgentStatusChange.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


class AgentStatusMonitor:
    """Polls executors for the reconciler (step ``agent_status``). Not shared between threads."""

    def __init__(self) -> None:
        self._clients: dict[int, ExecutorClient] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._last_poll = float("-inf")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        while self._clients:
            self._clients.popitem()[1].close()

    # --- the reconcile step --------------------------------------------------------------------------
    def agent_status(self) -> int:
        """One poll of every enabled executor, at most every ``AGENT_STATUS_POLL_S``: the number of
        agents whose stored state changed."""
        if time.monotonic() - self._last_poll < settings.AGENT_STATUS_POLL_S:
            return 0
        self._last_poll = time.monotonic()
        return self.poll_once()

    def poll_once(self) -> int:
        default_executor()  # with EXECUTOR_URL set, this creates (or updates) the row it mirrors
        executors = list(Executor.objects.filter(enabled=True).order_by("pk"))
        if not executors:
            return 0
        ExecutorHealth.objects.bulk_create(
            [ExecutorHealth(executor=executor) for executor in executors], ignore_conflicts=True
        )
        polls = self._poll(executors)
        return sum(self.apply(executor, polls[executor.pk]) for executor in executors)

    def _client(self, executor: Executor) -> ExecutorClient:
        bound = settings.AGENT_STATUS_TIMEOUT_S
        config = replace(
            config_for(executor),
            connect_timeout_s=min(executor.connect_timeout_s, bound),
            read_timeout_s=min(executor.read_timeout_s, bound),
            retries=0,  # the next poll is the retry
        )
        return cached_client(self._clients, executor.pk, config)

    def _poll(self, executors: list[Executor]) -> dict[int, Poll]:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="agent-status")
        futures = {
            executor.pk: self._pool.submit(_poll_one, self._client(executor)) for executor in executors
        }
        # Each call is bounded by its timeouts; a server trickling bytes could outlast them, so the pass
        # waits no longer than connect + read + a second, and counts what has not answered as failed.
        limit = 2 * settings.AGENT_STATUS_TIMEOUT_S + 1.0
        concurrent.futures.wait(futures.values(), timeout=limit)
        polls: dict[int, Poll] = {}
        for pk, future in futures.items():
            if future.done():
                polls[pk] = future.result()
            else:
                future.cancel()
                polls[pk] = Poll(error=f"GET /v1/agents: no answer within {limit:g} s")
        return polls

    # --- applying one executor's poll ----------------------------------------------------------------
    def apply(self, executor: Executor, poll: Poll, *, now: datetime | None = None) -> int:
        """Record ``poll`` for ``executor`` in one transaction: the number of agents whose state changed.
        Skipped (0) while another reconciler holds the executor, or polled it less than half an interval
        ago."""
        debounce = settings.AGENT_STATUS_DEBOUNCE
        with transaction.atomic():
            health = (
                ExecutorHealth.objects.select_for_update(skip_locked=True).filter(executor=executor).first()
            )
            now = now or timezone.now()
            if health is None or _polled_recently(health, now):
                return 0
            statuses = {
                s.agent_id: s for s in AgentStatus.objects.select_for_update().filter(executor=executor)
            }
            health.last_poll_at = now
            if poll.agents is not None:
                health.up, health.failed_polls, health.last_error, health.last_seen_at = True, 0, "", now
                changes = self._observe_listing(executor, statuses, poll.agents, now, debounce)
            else:
                health.up, health.failed_polls = False, health.failed_polls + 1
                health.last_error = poll.error[:DETAIL_CHARS]
                changes = []
                if health.failed_polls >= debounce:
                    changes = self._go_offline(statuses.values(), health.last_error, now)
            health.save(update_fields=["up", "failed_polls", "last_error", "last_poll_at", "last_seen_at"])
            self._record(executor, changes)
        if poll.error and health.failed_polls in {1, debounce}:
            logger.warning(
                "agent_status_poll_failed",
                executor=executor.name,
                failed_polls=health.failed_polls,
                error=poll.error,
            )
        return len(changes)

    def _observe_listing(
        self,
        executor: Executor,
        statuses: dict[str, AgentStatus],
        agents: dict[str, Observation],
        now: datetime,
        debounce: int,
    ) -> list[tuple[AgentStatus, str]]:
        changes: list[tuple[AgentStatus, str]] = []
        new = [
            AgentStatus(executor=executor, agent_id=agent_id, app=seen.app, since=now, observed_at=now)
            for agent_id, seen in agents.items()
            if agent_id not in statuses
        ]
        for status in AgentStatus.objects.bulk_create(new):
            statuses[status.agent_id] = status
        for agent_id, status in statuses.items():
            seen = agents.get(agent_id) or Observation(status.app, AgentState.IDLE, NOT_LISTED)
            status.app = seen.app or status.app
            previous = observe(status, seen.state, seen.detail, now, debounce)
            if previous is not None:
                changes.append((status, previous))
        _save(statuses.values())
        return changes

    @staticmethod
    def _go_offline(
        statuses: Iterable[AgentStatus], error: str, now: datetime
    ) -> list[tuple[AgentStatus, str]]:
        changes: list[tuple[AgentStatus, str]] = []
        statuses = list(statuses)
        for status in statuses:
            status.observed_at = now
            status.pending_state, status.pending_count = "", 0
            if status.state != AgentState.OFFLINE:
                changes.append((status, status.state))
                status.state, status.detail, status.since = AgentState.OFFLINE, error, now
        _save(statuses)
        return changes

    @staticmethod
    def _record(executor: Executor, changes: list[tuple[AgentStatus, str]]) -> None:
        """One history row per change and, once the transaction commits, one ``agent_status`` event."""
        if not changes:
            return
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHANGES_LOCK])
        rows = AgentStatusChange.objects.bulk_create(
            AgentStatusChange(
                status=status, previous=previous, state=status.state, detail=status.detail, at=status.since
            )
            for status, previous in changes
        )
        events = [
            (row.pk, EVENT, encode(event_data(row, status, executor)))
            for row, (status, _previous) in zip(rows, changes, strict=True)
        ]
        for row, (status, previous) in zip(rows, changes, strict=True):
            logger.info(
                "agent_status_changed",
                executor=executor.name,
                agent=status.agent_id,
                previous=previous,
                state=status.state,
                change=row.pk,
            )
        transaction.on_commit(lambda: live.publish([(CHANNEL, events)]))


def _poll_one(client: ExecutorClient) -> Poll:
    """In a pool thread (no database): the executor's listing, or why there is none."""
    try:
        return Poll(agents=parse_listing(client.list_agents().data))
    except ExecutorError as exc:
        return Poll(error=f"{exc.error_class}: {exc.message}")
    except ValueError as exc:
        return Poll(error=f"http_status: {exc}")


def _polled_recently(health: ExecutorHealth, now: datetime) -> bool:
    """Another reconciler applied a poll of this executor less than half an interval ago."""
    interval = timedelta(seconds=settings.AGENT_STATUS_POLL_S / 2)
    return bool(interval) and health.last_poll_at is not None and now - health.last_poll_at < interval


def _save(statuses: Iterable[AgentStatus]) -> None:
    fields = ["app", "state", "detail", "since", "observed_at", "pending_state", "pending_count"]
    AgentStatus.objects.bulk_update(list(statuses), fields)
