"""``GET /api/health/summary``: the fleet at a glance for operators, in the same few queries whatever the
number of runs, agents or queue entries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import AgentState
from observability.models import OperatorAction, OperatorGrant, ReconcilerHeartbeat
from observability.selectors import runs_last_hour_by_status
from run_queue.models import State
from runs.models import Run, RunStatus
from tests.factories import RoleBindingFactory, RoleFactory
from tests.observability.health_support import ago, bulk_runs, fleet, queue_entry

URL = "/api/health/summary"


def summary_queries(api) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(URL)
    assert response.status_code == 200
    return len(queries), response.json()


def test_the_summary_counts_every_part_of_the_fleet(api_as, superuser):
    fleet()
    bulk_runs(2, status=RunStatus.QUEUED, created_at=ago(minutes=5))
    bulk_runs(1, status=RunStatus.RUNNING, created_at=ago(minutes=30))
    bulk_runs(1, status=RunStatus.SUCCEEDED, created_at=ago(hours=2), duration_s=6600)  # finished 10 min ago
    bulk_runs(3, status=RunStatus.FAILED, created_at=ago(hours=3), duration_s=60)  # long before the hour
    bulk_runs(1, status=RunStatus.RUNNING, created_at=ago(hours=3))  # active, but not of the last hour
    queue_entry(State.READY, available_at=ago(seconds=40))
    queue_entry(State.READY, available_at=ago(seconds=5))
    queue_entry(State.READY, available_at=timezone.now() + timedelta(minutes=5))  # backing off
    queue_entry(State.LEASED)
    queue_entry(State.PARKED)
    queue_entry(State.DEAD)
    queue_entry(State.DEAD)
    queue_entry(State.DONE)
    ReconcilerHeartbeat.objects.create(owner="reconciler:a", last_pass_at=ago(seconds=2), passes=9)
    ReconcilerHeartbeat.objects.create(owner="reconciler:b", last_pass_at=ago(minutes=10), passes=3)

    body = api_as(superuser).get(URL).json()

    assert body["agents"] == {
        "by_state": {"unknown": 0, "idle": 1, "busy": 2, "waiting_input": 1, "error": 0, "offline": 1},
        "total": 5,
    }
    executors = {item["name"]: item for item in body["executors"]["items"]}
    assert (body["executors"]["up"], body["executors"]["down"]) == (1, 2)
    assert list(executors) == ["bulk-executor", "exec-down", "exec-new", "exec-off", "exec-up"]
    assert executors["exec-up"]["up"] is True
    assert executors["exec-off"] == {**executors["exec-off"], "enabled": False, "up": False}
    assert executors["exec-down"]["failed_polls"] == 3
    assert executors["exec-down"]["last_error"] == "ConnectError: refused"
    assert executors["exec-new"] == {
        "id": executors["exec-new"]["id"],
        "name": "exec-new",
        "enabled": True,
        "up": False,
        "failed_polls": 0,
        "last_seen_at": None,
        "last_error": "",
    }
    queue = body["queue"]
    assert {key: queue[key] for key in ("depth", "ready", "parked", "dead")} == {
        "depth": 5,
        "ready": 2,
        "parked": 1,
        "dead": 2,
    }
    assert 39 <= queue["oldest_ready_age_s"] < 60
    assert body["runs_last_hour"] == {
        "by_status": {
            "queued": 2,
            "running": 1,
            "waiting_human": 0,
            "succeeded": 1,
            "failed": 0,
            "cancelled": 0,
            "timed_out": 0,
        },
        "total": 4,
    }
    reconciler = body["reconciler"]
    assert reconciler["owner"] == "reconciler:a"
    assert 1 <= reconciler["age_s"] < 30
    assert reconciler["last_pass_at"].startswith(str(timezone.now().year))


def test_an_empty_fleet_has_zeros_and_nulls(api_as, superuser):
    body = api_as(superuser).get(URL).json()
    assert body["agents"]["total"] == 0
    assert body["executors"] == {"up": 0, "down": 0, "items": []}
    assert body["queue"] == {"depth": 0, "ready": 0, "parked": 0, "oldest_ready_age_s": None, "dead": 0}
    assert body["runs_last_hour"]["total"] == 0
    assert set(body["runs_last_hour"]["by_status"]) == set(RunStatus.values)
    assert set(body["agents"]["by_state"]) == set(AgentState.values)
    assert body["reconciler"] == {"last_pass_at": None, "age_s": None, "owner": None}


def test_the_summary_runs_as_many_queries_with_10_000_runs_as_with_10(api_as, superuser):
    api = api_as(superuser)
    fleet()
    bulk_runs(5, status=RunStatus.SUCCEEDED, created_at=ago(minutes=20), duration_s=30)
    bulk_runs(5, status=RunStatus.RUNNING, created_at=ago(minutes=2))
    for state in (State.READY, State.PARKED, State.DEAD):
        queue_entry(state)
    few, small = summary_queries(api)
    assert small["runs_last_hour"]["total"] == 10

    bulk_runs(9_000, status=RunStatus.SUCCEEDED, created_at=ago(days=2), duration_s=30)
    bulk_runs(990, status=RunStatus.FAILED, created_at=ago(minutes=50), duration_s=30)
    for _ in range(20):
        queue_entry(State.DEAD)
    many, large = summary_queries(api)

    assert Run.objects.count() == 10_000
    assert many == few
    assert few <= 6  # agents, executors, queue, runs, reconciler (+ nothing per row)
    assert large["runs_last_hour"]["by_status"]["failed"] == 990
    assert large["runs_last_hour"]["total"] == 1_000
    assert large["queue"]["dead"] == 21


def test_the_last_hour_s_runs_are_found_by_index_not_by_reading_every_run(db):
    bulk_runs(10_000, status=RunStatus.SUCCEEDED, created_at=ago(days=3), duration_s=30)
    bulk_runs(20, status=RunStatus.RUNNING, created_at=ago(minutes=3))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE runs_run")
    with CaptureQueriesContext(connection) as queries:
        assert runs_last_hour_by_status(timezone.now())["running"] == 20
    (query,) = queries.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + query["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan, plan
    assert "runs_status_idx" in plan, plan
    assert "runs_finished_idx" in plan, plan


@pytest.mark.parametrize("path", [URL, "/api/queue/dead"])
def test_only_operators_see_the_health_api(api, api_as, member, path):
    assert api.get(path).status_code == 401
    response = api_as(member).get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", [URL, "/api/queue/dead"])
def test_a_role_with_the_dashboard_grant_opens_the_health_api(api_as, member, path):
    role = RoleFactory()
    RoleBindingFactory(role=role, user=member)
    OperatorGrant.objects.create(role=role, action=OperatorAction.DASHBOARD_VIEW)
    assert api_as(member).get(path).status_code == 200


def test_the_summary_refuses_writes(api_as, superuser):
    assert api_as(superuser).post(URL, {}, format="json").status_code == 405
