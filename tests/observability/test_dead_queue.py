"""``GET /api/queue/dead``: the queue entries that used up their attempts, newest first, for operators."""

import uuid

import pytest

from run_queue.models import State
from runs.models import RunStatus
from tests.observability.health_support import ago, bulk_runs, queue_entry

URL = "/api/queue/dead"


@pytest.fixture
def dead(db):
    (run,) = bulk_runs(1, status=RunStatus.FAILED, created_at=ago(minutes=3), duration_s=60)
    pruned_run = uuid.uuid4()
    entries = [
        queue_entry(
            State.DEAD,
            run_id=run.pk,
            attempts=5,
            last_error_class="executor_unavailable",
            last_error_detail="connection refused",
            updated_at=ago(minutes=1),
        ),
        queue_entry(
            State.DEAD, run_id=pruned_run, attempts=2, last_error_class="operator", updated_at=ago(hours=1)
        ),
        queue_entry(State.DEAD, attempts=1, updated_at=ago(days=1)),
    ]
    queue_entry(State.READY, last_error_class="executor_unavailable")
    queue_entry(State.DONE)
    return entries


def test_dead_entries_are_listed_newest_first_with_their_run_s_app(api_as, superuser, dead):
    entries = dead
    results = api_as(superuser).get(URL).json()["results"]
    assert [row["run_id"] for row in results] == [str(entry.run_id) for entry in entries]
    first = results[0]
    assert set(first) == {"run_id", "app", "attempts", "last_error_class", "last_error_detail", "updated_at"}
    assert first["app"] == "bulk"
    assert (first["attempts"], first["last_error_class"]) == (5, "executor_unavailable")
    assert first["last_error_detail"] == "connection refused"
    assert results[1]["app"] is None  # the run was pruned: the entry stays for operators
    assert results[1]["last_error_class"] == "operator"


def test_limit_takes_the_newest(api_as, superuser, dead):
    results = api_as(superuser).get(URL, {"limit": "2"}).json()["results"]
    assert len(results) == 2
    assert results[0]["app"] == "bulk"


def test_the_list_is_one_query_whatever_its_length(api_as, superuser, dead, django_assert_num_queries):
    api = api_as(superuser)
    for _ in range(30):
        queue_entry(State.DEAD)
    with django_assert_num_queries(1):
        assert len(api.get(URL, {"limit": "200"}).json()["results"]) == 33


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "١٢", "1.5", str(2**31)])
def test_a_bad_limit_is_a_400_naming_it(api_as, superuser, limit):
    response = api_as(superuser).get(URL, {"limit": limit})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["detail"]) == ["limit"]
