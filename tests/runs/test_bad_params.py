"""Query parameters and headers of the runs API are read strictly: a malformed one is a 400 naming it,
before anything is written, never a 500."""

import uuid

import pytest

from run_queue.models import QueueEntry
from runs.models import Run, RunEvent, Session
from tests.factories import AppFactory


@pytest.fixture
def app(db):
    return AppFactory(slug="demo")


@pytest.fixture
def run(api_as, member, app):
    response = api_as(member).post("/api/runs/", {"app": "demo"}, format="json")
    assert response.status_code == 201
    return Run.objects.get(pk=response.json()["id"])


def row_counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Session, Run, RunEvent, QueueEntry))


def assert_invalid(response, field):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["detail"], error


MALFORMED_LAST_EVENT_IDS = [
    "nonsense",
    "run-x:abc",
    "run-x:-1",
    "run-x:١٢",  # Arabic-Indic digits: str.isdigit() says yes, the protocol says no
    "run-x:" + "9" * 5000,  # int() refuses more than 4,300 digits with a ValueError
    f"run-x:{2**31}",  # past PostgreSQL's integer
    "run-x:1," * 1000,  # too long
]


@pytest.mark.parametrize("last_event_id", MALFORMED_LAST_EVENT_IDS)
def test_start_stream_with_a_malformed_last_event_id_is_400_and_creates_no_run(
    api_as, member, app, last_event_id
):
    before = row_counts()
    response = api_as(member).post(
        "/api/runs/start", {"app": "demo"}, format="json", headers={"Last-Event-ID": last_event_id}
    )
    assert_invalid(response, "Last-Event-ID")
    assert row_counts() == before


def test_start_stream_with_a_malformed_last_event_id_query_is_400_and_creates_no_run(api_as, member, app):
    response = api_as(member).post("/api/runs/start?lastEventId=run-x:1e3", {"app": "demo"}, format="json")
    assert_invalid(response, "lastEventId")
    assert not Run.objects.exists()


@pytest.mark.parametrize("last_event_id", MALFORMED_LAST_EVENT_IDS)
@pytest.mark.parametrize("path", ["events", "todos/events"])
def test_streams_refuse_a_malformed_last_event_id(api_as, member, run, path, last_event_id):
    response = api_as(member).get(f"/api/runs/{run.pk}/{path}", headers={"Last-Event-ID": last_event_id})
    assert_invalid(response, "Last-Event-ID")


@pytest.mark.parametrize("value", ["-1", "١٢", "1.5", "1e3", " 1", "9" * 5000, str(2**31), "0x10"])
@pytest.mark.parametrize("name", ["after", "limit"])
def test_event_pages_refuse_malformed_numbers(api_as, member, run, name, value):
    query = {"after": "0", name: value}
    assert_invalid(api_as(member).get(f"/api/runs/{run.pk}/events", query), name)


def test_event_pages_take_the_largest_integer_postgresql_stores(api_as, member, run):
    response = api_as(member).get(f"/api/runs/{run.pk}/events", {"after": str(2**31 - 1)})
    assert response.status_code == 200
    assert response.json()["events"] == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("session", "not-a-uuid"),
        ("session", "{" + str(uuid.UUID(int=1)) + "}"),
        ("session", "١" * 32),
        ("status", "nope"),
        ("status", "queued\x00"),
        ("app", "no spaces"),
        ("app", "demo\x00"),
        ("created_after", "yesterday"),
        ("created_after", "2026-13-01"),
        ("created_after", "2026-02-30"),
        ("created_after", "2026-12-01T24:00"),
        ("created_after", "２０２６-12-01"),  # fullwidth digits: datetime.fromisoformat takes some spellings
        ("created_after", "20261201"),  # ISO 8601's basic form: not what this API speaks
        ("created_after", "2026-12-01 10:00"),  # an unencoded "+01:00" arrives as " 01:00"
        ("created_before", "2026-12-01T10:00:00 01:00"),
        ("created_before", "2026-12-01T10:00:00+0100"),
        ("created_before", "2026-12-01T10:00:00.1234567Z"),
        ("created_before", "0000-01-01"),
        ("created_before", "2026-12-01\x00"),
        ("created_before", "2026-12-01" + "0" * 5000),
    ],
)
def test_run_list_refuses_malformed_filters(api_as, member, run, name, value):
    assert_invalid(api_as(member).get("/api/runs/", {name: value}), name)


def test_run_list_filters_still_work(api_as, member, run):
    client = api_as(member)
    query = {"status": "queued", "app": "demo", "session": str(run.session_id)}
    assert [item["id"] for item in client.get("/api/runs/", query).json()["results"]] == [str(run.pk)]
    assert client.get("/api/runs/", {"status": "succeeded"}).json()["results"] == []


@pytest.mark.parametrize("key", ["k" * 201, "key\x00", "tab\there"])
def test_a_malformed_idempotency_key_is_400_and_creates_nothing(api_as, member, app, key):
    before = row_counts()
    response = api_as(member).post(
        "/api/runs/", {"app": "demo"}, format="json", headers={"Idempotency-Key": key}
    )
    assert_invalid(response, "Idempotency-Key")
    assert row_counts() == before
