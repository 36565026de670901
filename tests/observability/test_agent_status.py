"""The agent-status monitor against real reference-executor processes, and its API and SSE stream over real
HTTP (uvicorn, with live delivery through Redis from this process, which plays the reconciler)."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from io import StringIO

import pytest
import requests
from django.core.management import call_command
from django.db import connection, transaction
from rest_framework.authtoken.models import Token

from agents.models import AgentState, AgentStatus, AgentStatusChange, ExecutorHealth
from agents.sse import iter_sse
from observability.agent_status import NOT_LISTED, AgentStatusMonitor
from observability.models import OperatorAction, OperatorGrant
from observability.reconciler import Reconciler, ReconcilerOptions
from tests.executor_support import (
    ExecutorProcess,
    RecordingServer,
    start_executor,
    stop_process,
    wait_until,
)
from tests.factories import ExecutorFactory, RoleBindingFactory, RoleFactory, UserFactory
from tests.stack import SseReader, start_web

DEBOUNCE = 3


@pytest.fixture(autouse=True)
def _monitor_settings(settings):
    settings.AGENT_STATUS_DEBOUNCE = DEBOUNCE
    settings.AGENT_STATUS_POLL_S = 0  # every call polls: the tests pace the passes
    settings.AGENT_STATUS_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    process = start_executor(tmp_path_factory.mktemp("executor"))
    yield process
    stop_process(process.process)


@pytest.fixture
def own(tmp_path):
    """An executor process of the test's own: its listing holds only the test's agents."""
    process = start_executor(tmp_path)
    yield process
    stop_process(process.process)


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        process, base = start_web(tmp_path_factory.mktemp("web"))
    yield base
    process.stop()


@pytest.fixture
def monitor():
    monitor = AgentStatusMonitor()
    yield monitor
    monitor.close()


@pytest.fixture
def change_ids_far_away(transactional_db):
    """Redis pub/sub channels are shared with other test databases, whose change ids start at 1 too: ours
    start somewhere else, so a foreign ``agent_status`` cannot pass for one of ours on a stream."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('agents_agentstatuschange', 'id'), %s)",
            [random.randint(10**8, 2 * 10**9)],
        )


def executor_row(process: ExecutorProcess):
    return ExecutorFactory(name=f"ex-{uuid.uuid4().hex[:8]}", base_url=process.base_url, token=process.token)


def app_name() -> str:
    return f"app-{uuid.uuid4().hex[:8]}"


def long_run(process: ExecutorProcess, app: str) -> str:
    run_id = process.start_run("long", {"seconds": 120}, app=app)
    process.wait_for_state(run_id, "running")
    return run_id


def cancel(process: ExecutorProcess, run_id: str) -> None:
    assert process.http("POST", f"/v1/runs/{run_id}/cancel").status_code in {200, 202}
    process.wait_for_state(run_id, "cancelled")


def status_of(executor, agent_id: str) -> AgentStatus:
    return AgentStatus.objects.get(executor=executor, agent_id=agent_id)


def polls(monitor: AgentStatusMonitor, n: int, executor=None, agent: str = "") -> int:
    """``n`` passes: how many changes they made, or (other tests' agents share the executor) how many of
    them were of ``agent``."""
    if not agent:
        return sum(monitor.poll_once() for _ in range(n))
    mine = AgentStatusChange.objects.filter(status__executor=executor, status__agent_id=agent)
    before = mine.count()
    for _ in range(n):
        monitor.poll_once()
    return mine.count() - before


def operator_client(base: str) -> tuple[str, dict[str, str]]:
    """A user who is no staff member but holds a role with the dashboard.view grant, and their headers."""
    user = UserFactory(username=f"op-{uuid.uuid4().hex[:6]}")
    role = RoleFactory()
    RoleBindingFactory(role=role, user=user)
    OperatorGrant.objects.create(role=role, action=OperatorAction.DASHBOARD_VIEW)
    return base, {"Authorization": f"Token {Token.objects.create(user=user).key}"}


@dataclass
class AgentStream(SseReader):
    """An SSE reader that also notes the ``stream-open`` event: the stream has subscribed and placed itself
    (an id-less stream starts at the last change there is then)."""

    opened: threading.Event = field(default_factory=threading.Event)

    def _read(self) -> None:
        try:
            for message in iter_sse(self.response.iter_content(chunk_size=None)):
                if message.event == "stream-open":
                    self.opened.set()
                elif message.event != "keep-alive":
                    self.events.append(
                        {"id": message.id, "type": message.event, "data": json.loads(message.data)}
                    )
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def close(self) -> None:
        """Shut the socket down first: closing a response while the reader thread waits in a read would wait
        for the next keep-alive (10-20 s)."""
        with contextlib.suppress(AttributeError, OSError):
            self.response.raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        super().close()
        self.done.wait(5)


def open_stream(base: str, headers: dict[str, str], query: str = "", **extra: str) -> AgentStream:
    response = requests.get(
        base + "/api/agents/events" + query,
        headers={"Accept": "text/event-stream", **headers, **extra},
        stream=True,
        timeout=(5, 60),
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    reader = AgentStream(response)
    reader.start()
    assert reader.opened.wait(10), reader.error
    return reader


def of(reader: SseReader, executor) -> list[dict]:
    return [
        e for e in reader.events if e["type"] == "agent_status" and e["data"]["executor"] == executor.name
    ]


# --- debouncing ---------------------------------------------------------------------------------------
def test_flapping_within_n_polls_keeps_the_state_and_n_equal_polls_change_it_once_with_one_event(
    reference, web, monitor, change_ids_far_away
):
    executor, app = executor_row(reference), app_name()
    agent = f"{app}/scripted:long"
    first = long_run(reference, app)
    cancel(reference, first)
    assert polls(monitor, DEBOUNCE - 1, executor, agent) == 0
    assert status_of(executor, agent).state == AgentState.UNKNOWN  # a new agent waits its N polls too
    assert polls(monitor, 1, executor, agent) == 1
    assert status_of(executor, agent).state == AgentState.IDLE

    reader = open_stream(*operator_client(web))
    try:
        # busy, idle, busy: never N equal observations in a row
        second = long_run(reference, app)
        monitor.poll_once()
        assert status_of(executor, agent).pending_state == AgentState.BUSY
        cancel(reference, second)
        monitor.poll_once()
        assert status_of(executor, agent).pending_count == 0  # seeing the stored state again resets it
        third = long_run(reference, app)
        monitor.poll_once()
        stored = status_of(executor, agent)
        assert (stored.state, stored.pending_state, stored.pending_count) == (AgentState.IDLE, "busy", 1)
        assert AgentStatusChange.objects.filter(status=stored).count() == 1

        assert polls(monitor, DEBOUNCE - 1, executor, agent) == 1  # the third busy in a row
        stored = status_of(executor, agent)
        assert stored.state == AgentState.BUSY
        assert "1 running" in stored.detail
        assert polls(monitor, 2, executor, agent) == 0  # once
        change = AgentStatusChange.objects.filter(status=stored).order_by("pk").last()
        assert (change.previous, change.state) == (AgentState.IDLE, AgentState.BUSY)

        wait_until(lambda: of(reader, executor), timeout=10, what="the agent_status event")
        time.sleep(0.5)  # anything more would have arrived by now
        events = of(reader, executor)
        assert len(events) == 1
        assert events[0]["id"] == f"agents:{change.pk}"
        data = events[0]["data"]
        assert data == {
            "executor": executor.name,
            "executor_id": executor.pk,
            "status_id": stored.pk,
            "agent_id": agent,
            "app": app,
            "state": "busy",
            "previous": "idle",
            "detail": stored.detail,
            "since": data["since"],
        }
        assert data["since"].startswith(stored.since.isoformat()[:19])
        cancel(reference, third)
    finally:
        reader.close()


def test_waiting_for_input_is_observed(reference, monitor, transactional_db):
    executor, app = executor_row(reference), app_name()
    run_id = reference.start_run("demo", {"delay_ms": 0}, app=app)
    reference.wait_for_state(run_id, "waiting_input")
    polls(monitor, DEBOUNCE)
    stored = status_of(executor, f"{app}/scripted:demo")
    assert (stored.state, stored.app) == (AgentState.WAITING_INPUT, app)
    cancel(reference, run_id)


# --- executors that fail -------------------------------------------------------------------------------
def test_a_stopped_executor_turns_its_agents_offline_after_n_polls_and_a_new_one_lists_them_no_more(
    monitor, transactional_db, tmp_path
):
    own = start_executor(tmp_path)
    try:
        executor, app = executor_row(own), app_name()
        agent = f"{app}/scripted:long"
        long_run(own, app)
        polls(monitor, DEBOUNCE)
        assert status_of(executor, agent).state == AgentState.BUSY
        assert ExecutorHealth.objects.get(executor=executor).up
    finally:
        stop_process(own.process)

    assert polls(monitor, DEBOUNCE - 1) == 0
    health = ExecutorHealth.objects.get(executor=executor)
    assert (health.up, health.failed_polls) == (False, DEBOUNCE - 1)
    assert health.last_error.startswith("network: GET /v1/agents")
    assert status_of(executor, agent).state == AgentState.BUSY
    assert polls(monitor, 1) == 1
    stored = status_of(executor, agent)
    assert stored.state == AgentState.OFFLINE
    assert stored.detail == ExecutorHealth.objects.get(executor=executor).last_error
    change = AgentStatusChange.objects.filter(status=stored).order_by("pk").last()
    assert (change.previous, change.state) == (AgentState.BUSY, AgentState.OFFLINE)
    assert polls(monitor, 2) == 0
    assert ExecutorHealth.objects.get(executor=executor).failed_polls == DEBOUNCE + 2

    # It comes back as a new process that knows none of its old runs: the agent is observed idle.
    fresh = start_executor(tmp_path)
    try:
        executor.base_url = fresh.base_url
        executor.token = fresh.token
        executor.save()
        assert polls(monitor, DEBOUNCE - 1) == 0
        health = ExecutorHealth.objects.get(executor=executor)
        assert (health.up, health.failed_polls, health.last_error) == (True, 0, "")
        assert polls(monitor, 1) == 1
        stored = status_of(executor, agent)
        assert (stored.state, stored.detail) == (AgentState.IDLE, NOT_LISTED)
    finally:
        stop_process(fresh.process)


def test_a_silent_executor_costs_the_pass_one_timeout_and_the_others_are_still_polled(
    reference, monitor, transactional_db, settings
):
    settings.AGENT_STATUS_TIMEOUT_S = 0.5
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        dead = [
            ExecutorFactory(name=f"silent-{n}", base_url=f"http://127.0.0.1:{silent.getsockname()[1]}")
            for n in range(3)
        ]
        executor, app = executor_row(reference), app_name()
        run_id = long_run(reference, app)
        started = time.monotonic()
        monitor.poll_once()
        assert time.monotonic() - started < 1.5  # concurrently: not 3 × 0.5 s plus the live one
    for row in dead:
        health = ExecutorHealth.objects.get(executor=row)
        assert (health.up, health.failed_polls) == (False, 1)
        assert health.last_error.startswith("timeout: ")
    assert status_of(executor, f"{app}/scripted:long").pending_state == AgentState.BUSY
    cancel(reference, run_id)


def test_a_listing_that_is_not_the_protocol_counts_as_a_failed_poll(monitor, transactional_db):
    with RecordingServer(lambda request: (200, {"agents": "not a list"})) as server:
        executor = ExecutorFactory(name="garbled", base_url=server.url)
        monitor.poll_once()
    health = ExecutorHealth.objects.get(executor=executor)
    assert (health.up, health.failed_polls) == (False, 1)
    assert health.last_error == "http_status: GET /v1/agents: the reply is not a list"


def test_disabled_executors_are_not_polled(monitor, transactional_db):
    executor = ExecutorFactory(name="off", enabled=False)
    monitor.poll_once()
    assert not ExecutorHealth.objects.filter(executor=executor).exists()


# --- two reconcilers ---------------------------------------------------------------------------------------
def test_an_executor_locked_by_another_reconciler_is_skipped_not_waited_for(
    reference, monitor, transactional_db
):
    executor = executor_row(reference)
    monitor.poll_once()
    locked, release = threading.Event(), threading.Event()

    def other_reconciler():
        with transaction.atomic():
            ExecutorHealth.objects.select_for_update().get(executor=executor)
            locked.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_reconciler)
    thread.start()
    try:
        assert locked.wait(10)
        before = ExecutorHealth.objects.get(executor=executor).last_poll_at
        started = time.monotonic()
        monitor.poll_once()
        assert time.monotonic() - started < 2
        assert ExecutorHealth.objects.get(executor=executor).last_poll_at == before
    finally:
        release.set()
        thread.join()
    monitor.poll_once()
    assert ExecutorHealth.objects.get(executor=executor).last_poll_at > before


def test_a_poll_another_reconciler_made_just_now_is_not_counted_twice(
    reference, monitor, transactional_db, settings
):
    executor, app = executor_row(reference), app_name()
    run_id = long_run(reference, app)
    settings.AGENT_STATUS_POLL_S = 60
    other = AgentStatusMonitor()
    try:
        monitor.poll_once()
        other.poll_once()
    finally:
        other.close()
    assert status_of(executor, f"{app}/scripted:long").pending_count == 1
    cancel(reference, run_id)


def test_the_reconciler_polls_as_its_own_step_at_most_every_poll_interval(
    reference, transactional_db, settings
):
    executor = executor_row(reference)
    settings.AGENT_STATUS_POLL_S = 60
    reconciler = Reconciler(options=ReconcilerOptions())
    try:
        report = reconciler.run_once()
        assert "agent_status" in report.counts
        assert not report.failed
        first = ExecutorHealth.objects.get(executor=executor).last_poll_at
        assert first is not None
        reconciler.run_once()
        assert ExecutorHealth.objects.get(executor=executor).last_poll_at == first
    finally:
        reconciler.close()


# --- the API and the stream --------------------------------------------------------------------------------
def test_non_operators_get_404_from_the_api_and_the_stream(api_as, member, transactional_db):
    status = AgentStatus.objects.create(
        executor=ExecutorFactory(), agent_id="a/b", since="2026-01-01T00:00Z", observed_at="2026-01-01T00:00Z"
    )
    api = api_as(member)
    for path in ["/api/agents/status", f"/api/agents/status/{status.pk}/history", "/api/agents/events"]:
        response = api.get(path, HTTP_ACCEPT="text/event-stream" if path.endswith("events") else "*/*")
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "not_found"


def test_the_status_list_and_history_for_an_operator(own, monitor, api_as, transactional_db):
    executor, app = executor_row(own), app_name()
    run_id = long_run(own, app)
    polls(monitor, DEBOUNCE)
    cancel(own, run_id)
    polls(monitor, DEBOUNCE)
    operator = UserFactory(username="staffer", is_staff=True)
    api = api_as(operator)
    body = api.get(f"/api/agents/status?executor={executor.name}").json()
    stored = status_of(executor, f"{app}/scripted:long")
    last = AgentStatusChange.objects.order_by("pk").last()
    assert body["last_event_id"] == f"agents:{last.pk}"
    assert body["results"] == [
        {
            "id": stored.pk,
            "executor": executor.name,
            "executor_id": executor.pk,
            "agent_id": stored.agent_id,
            "app": app,
            "state": "idle",
            "detail": stored.detail,
            "since": body["results"][0]["since"],
            "observed_at": body["results"][0]["observed_at"],
        }
    ]
    assert api.get("/api/agents/status?state=busy&executor=" + executor.name).json()["results"] == []
    history = api.get(f"/api/agents/status/{stored.pk}/history").json()["results"]
    assert [(h["previous"], h["state"]) for h in history] == [("busy", "idle"), ("unknown", "busy")]
    assert api.get(f"/api/agents/status/{stored.pk}/history?limit=1").json()["results"][0]["state"] == "idle"
    assert api.get("/api/agents/status?state=sleepy").status_code == 400
    assert api.get("/api/agents/status/999999999/history").status_code == 404
    assert api.get("/api/agents/events", HTTP_LAST_EVENT_ID="agents:x").status_code == 400


def test_a_stream_replays_what_came_after_its_last_event_id_then_goes_live(
    own, web, monitor, change_ids_far_away
):
    executor, app = executor_row(own), app_name()
    agent = f"{app}/scripted:long"
    run_id = long_run(own, app)
    polls(monitor, DEBOUNCE)  # unknown → busy
    cancel(own, run_id)
    polls(monitor, DEBOUNCE)  # busy → idle
    stored = status_of(executor, agent)
    first, second = AgentStatusChange.objects.filter(status=stored).order_by("pk")
    base, headers = operator_client(web)

    replay = open_stream(base, headers, **{"Last-Event-ID": f"agents:{first.pk}"})
    present = open_stream(base, headers)  # no id: from now on
    everything = open_stream(base, headers, f"?lastEventId=agents:{first.pk - 1}")
    try:
        wait_until(lambda: of(replay, executor), timeout=10, what="the replayed change")
        assert [e["id"] for e in of(replay, executor)] == [f"agents:{second.pk}"]
        assert of(replay, executor)[0]["data"]["state"] == "idle"
        wait_until(lambda: len(of(everything, executor)) == 2, timeout=10, what="both changes")
        assert [e["data"]["state"] for e in of(everything, executor)] == ["busy", "idle"]
        everything.close()

        run_id = long_run(own, app)
        polls(monitor, DEBOUNCE)  # idle → busy, live
        third = AgentStatusChange.objects.filter(status=stored).order_by("pk").last()
        wait_until(lambda: len(of(replay, executor)) == 2, timeout=10, what="the live change on the replay")
        wait_until(lambda: of(present, executor), timeout=10, what="the live change on the fresh stream")
        assert [e["id"] for e in of(replay, executor)] == [f"agents:{second.pk}", f"agents:{third.pk}"]
        assert [e["id"] for e in of(present, executor)] == [f"agents:{third.pk}"]
        cancel(own, run_id)

        # A client ahead of the history (the database was restored) is told to start again from its end.
        ahead = open_stream(base, headers, **{"Last-Event-ID": f"agents:{third.pk + 1000}"})
        wait_until(lambda: ahead.events, timeout=10, what="the reset")
        ahead.close()
        assert ahead.events == [
            {"id": f"agents:{third.pk}", "type": "stream-reset", "data": {"channels": ["agents"]}}
        ]
    finally:
        for reader in (replay, present, everything):
            reader.close()


# --- admin --------------------------------------------------------------------------------------------------
def test_admin_pages_show_statuses_with_their_history_and_health(client, superuser, reference, monitor):
    executor, app = executor_row(reference), app_name()
    run_id = long_run(reference, app)
    polls(monitor, DEBOUNCE)
    cancel(reference, run_id)
    stored = status_of(executor, f"{app}/scripted:long")
    client.force_login(superuser)
    listing = client.get("/admin/agents/agentstatus/?state__exact=busy").content.decode()
    assert stored.agent_id in listing
    page = client.get(f"/admin/agents/agentstatus/{stored.pk}/change/").content.decode()
    assert "Unknown" in page
    assert "Busy" in page
    assert client.get("/admin/agents/agentstatus/add/").status_code == 403
    assert executor.name in client.get("/admin/agents/executorhealth/").content.decode()


def test_an_operator_grant_made_in_the_admin_records_who_made_it(client, superuser):
    role = RoleFactory(name="Night shift", slug="night-shift")
    client.force_login(superuser)
    found = client.get(
        "/admin/autocomplete/",
        {"app_label": "observability", "model_name": "operatorgrant", "field_name": "role", "term": "night"},
    ).json()
    assert [r["text"] for r in found["results"]] == ["Night shift"]
    response = client.post(
        "/admin/observability/operatorgrant/add/", {"role": role.pk, "action": OperatorAction.DASHBOARD_VIEW}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    grant = OperatorGrant.objects.get(role=role)
    assert grant.created_by == superuser
    assert client.get("/admin/observability/operatorgrant/").status_code == 200


def test_reconcile_once_polls_the_agents_too(reference, transactional_db):
    executor = executor_row(reference)
    out = StringIO()
    call_command("reconcile", "--once", stdout=out)
    assert " agent_status=" in out.getvalue()
    assert ExecutorHealth.objects.get(executor=executor).up
