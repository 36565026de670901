"""Starting, listing, reading, cancelling and answering runs over the API (no executor needed here)."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from agents.models import Action
from run_queue.models import QueueEntry, State
from runs.models import HumanLoopRequest, HumanLoopStatus, Run, RunEvent, RunStatus
from runs.services import human_loop_reply
from tests.factories import AppFactory, PromptVersionFactory, RunFactory, grant


@pytest.fixture
def app(db):
    return AppFactory(slug="demo")


def start(client, **body):
    body.setdefault("app", "demo")
    headers = body.pop("headers", {})
    return client.post("/api/runs/", body, format="json", headers=headers)


def test_start_queues_the_run_with_its_first_event(api_as, member, app):
    response = start(api_as(member), input={"topic": "x"})
    assert response.status_code == 201
    body = response.json()
    run = Run.objects.get(pk=body["id"])
    assert body["status"] == "queued"
    assert body["events_url"] == f"/api/runs/{run.pk}/events"
    assert QueueEntry.objects.get(run_id=run.pk).state == State.READY
    assert list(run.events.values_list("seq", "type")) == [(1, "run.queued")]
    assert run.last_seq == 1
    assert len(run.trace_id) == 32


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": [1, 2]}, "input"),
        ({"multitask": "maybe"}, "multitask"),
        ({"session_id": "nope"}, "session_id"),
        ({"app": "not a slug!"}, "app"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(api_as, member, app, body, field):
    response = start(api_as(member), **body)
    assert response.status_code == 400
    assert field in response.json()["error"]["detail"]
    assert not Run.objects.exists()
    assert not QueueEntry.objects.exists()


def test_unknown_or_disabled_app_is_404(api_as, member, app):
    assert start(api_as(member), app="nope").status_code == 404
    app.enabled = False
    app.save(update_fields=["enabled"])
    assert start(api_as(member)).json()["error"]["code"] == "app_not_found"


def test_same_idempotency_key_returns_the_same_run(api_as, member, app):
    client = api_as(member)
    first = start(client, input={"a": 1}, headers={"Idempotency-Key": "k-1"})
    again = start(client, input={"a": 1}, headers={"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Run.objects.count() == 1
    reused = start(client, input={"a": 2}, headers={"Idempotency-Key": "k-1"})
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"


def test_idempotency_keys_are_per_user(api_as, member, outsider, app):
    first = start(api_as(member), headers={"Idempotency-Key": "same"}).json()["id"]
    second = start(api_as(outsider), headers={"Idempotency-Key": "same"}).json()["id"]
    assert first != second


def test_second_start_in_a_session_is_rejected_or_queued_behind(api_as, member, app):
    client = api_as(member)
    first = start(client).json()
    rejected = start(client, session_id=first["session_id"])
    assert rejected.status_code == 409
    assert rejected.json()["error"]["detail"] == {"active_run_id": first["id"]}
    queued = start(client, session_id=first["session_id"], multitask="enqueue").json()
    assert QueueEntry.objects.get(run_id=queued["id"]).state == State.PARKED


def test_concurrent_starts_in_one_session_admit_exactly_one(transactional_db, member):
    from rest_framework.test import APIClient

    AppFactory(slug="demo")
    client = APIClient()
    client.force_authenticate(member)
    session_id = start(client).json()["session_id"]
    Run.objects.update(status=RunStatus.SUCCEEDED)  # the session is free again
    barrier = threading.Barrier(4)
    codes = []

    def race():
        own = APIClient()
        own.force_authenticate(member)
        barrier.wait()
        codes.append(start(own, session_id=session_id).status_code)
        connection.close()

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [201, 409, 409, 409]


def test_someone_else_s_session_is_404(api_as, member, outsider, app):
    session_id = start(api_as(member)).json()["session_id"]
    response = start(api_as(outsider), session_id=session_id)
    assert response.status_code == 404


def test_others_cannot_see_read_stream_or_cancel_a_run(api_as, member, outsider, app):
    run_id = start(api_as(member)).json()["id"]
    client = api_as(outsider)
    for path in ["", "events", "events?after=0", "todos", "todos/events"]:
        assert client.get(f"/api/runs/{run_id}/{path}").status_code == 404, path
    assert client.post(f"/api/runs/{run_id}/cancel").status_code == 404
    assert client.get("/api/runs/").json()["results"] == []
    assert Run.objects.get(pk=run_id).cancel_requested is False


def test_superuser_sees_every_run(api_as, member, superuser, app):
    run_id = start(api_as(member)).json()["id"]
    assert api_as(superuser).get(f"/api/runs/{run_id}/").status_code == 200


def test_list_filters_by_status_app_and_session(api_as, member, app):
    client = api_as(member)
    first = start(client).json()
    AppFactory(slug="other")
    start(client, app="other")
    assert len(client.get("/api/runs/").json()["results"]) == 2
    assert [r["id"] for r in client.get("/api/runs/", {"app": "demo"}).json()["results"]] == [first["id"]]
    assert [
        r["id"] for r in client.get("/api/runs/", {"session": first["session_id"]}).json()["results"]
    ] == [first["id"]]
    assert client.get("/api/runs/", {"status": "succeeded"}).json()["results"] == []
    assert client.get("/api/runs/", {"session": "bad"}).status_code == 400


def listed(client, **query) -> list[str]:
    response = client.get("/api/runs/", query)
    assert response.status_code == 200, response.content
    return [run["id"] for run in response.json()["results"]]


def test_list_filters_by_creation_time_from_inclusive_to_exclusive(api_as, member, app):
    at = {day: datetime(2026, 11, day, 12, tzinfo=UTC) for day in (28, 29, 30)}
    runs = {day: str(RunFactory(app=app, user=member, created_at=moment).pk) for day, moment in at.items()}
    client = api_as(member)
    assert listed(client, created_after="2026-11-29") == [runs[30], runs[29]]
    assert listed(client, created_before="2026-11-29") == [runs[28]]
    assert listed(client, created_after="2026-11-29", created_before="2026-11-30") == [runs[29]]
    assert listed(client, created_after="2026-11-29T12:00:00Z") == [runs[30], runs[29]]  # inclusive
    assert listed(client, created_before="2026-11-29T12:00:00Z") == [runs[28]]  # exclusive
    assert listed(client, created_after="2026-11-29T13:00:00+01:00") == [runs[30], runs[29]]
    assert listed(client, created_after="2026-11-29T12:00:00.000001Z") == [runs[30]]
    assert listed(client, created_before="2026-11-29T12:00") == [runs[28]]  # no offset: TIME_ZONE (UTC)
    assert listed(client, created_after="2026-12-01") == []


def test_a_date_without_an_offset_is_a_day_in_the_server_time_zone(api_as, member, app, settings):
    settings.TIME_ZONE = "Asia/Shanghai"  # UTC+8: its 30 November begins at 16:00 UTC on the 29th
    late = RunFactory(app=app, user=member, created_at=datetime(2026, 11, 29, 17, tzinfo=UTC))
    RunFactory(app=app, user=member, created_at=datetime(2026, 11, 29, 15, tzinfo=UTC))
    assert listed(api_as(member), created_after="2026-11-30") == [str(late.pk)]


def test_the_extreme_moments_filter_without_an_error(api_as, member, app):
    run = RunFactory(app=app, user=member)
    client = api_as(member)
    assert listed(client, created_after="0001-01-01T00:00:00+01:00") == [str(run.pk)]
    assert listed(client, created_before="9999-12-31T23:59:59.999999-01:00") == [str(run.pk)]
    assert listed(client, created_before="0001-01-01") == []


def test_the_list_pages_newest_first_with_the_total_and_no_run_twice(api_as, member, app):
    start_at = datetime(2026, 11, 1, tzinfo=UTC)
    made = [str(RunFactory(app=app, user=member, created_at=start_at).pk) for _ in range(3)]  # one instant
    made += [
        str(RunFactory(app=app, user=member, created_at=start_at + timedelta(minutes=n)).pk)
        for n in range(1, 5)
    ]
    client = api_as(member)
    pages = [client.get("/api/runs/", {"page_size": 3, "page": n}).json() for n in (1, 2, 3)]
    assert [page["count"] for page in pages] == [7, 7, 7]
    seen = [run["id"] for page in pages for run in page["results"]]
    assert sorted(seen) == sorted(made)  # every run once, the three of one instant included
    assert seen[:4] == made[:2:-1]  # newest first
    assert (pages[0]["previous"], pages[2]["next"]) == (None, None)
    assert client.get("/api/runs/", {"page_size": 3, "page": 4}).status_code == 404


def test_the_list_names_whose_run_each_is(api_as, member, owner, app):
    grant(member, Action.RUN_VIEW_ALL, app)
    RunFactory(app=app, user=owner)
    RunFactory(app=app, user=member)
    results = api_as(member).get("/api/runs/", {"scope": "visible"}).json()["results"]
    assert sorted(run["user"] for run in results) == ["member", "owner"]


def test_a_page_of_runs_takes_the_same_queries_for_3_or_60_runs(
    api_as, member, owner, app, django_assert_num_queries
):
    grant(member, Action.RUN_VIEW_ALL, app)
    version = PromptVersionFactory(app=app, number=1)
    client = api_as(member)

    def make(count):
        for n in range(count):
            RunFactory(app=app, user=owner if n % 2 else member, prompt_version=version)

    make(3)
    with django_assert_num_queries(2):  # the count, and the page with its apps, prompts and owners
        assert len(listed(client, scope="visible", page_size=50)) == 3
    make(57)
    with django_assert_num_queries(2):
        assert len(listed(client, scope="visible", page_size=50)) == 50


def test_events_page_as_json_after_a_seq(api_as, member, app):
    client = api_as(member)
    run = Run.objects.get(pk=start(client).json()["id"])
    RunEvent.objects.bulk_create(
        [RunEvent(run=run, seq=s, type="message.delta", data={"text": str(s)}) for s in range(2, 8)]
    )
    Run.objects.filter(pk=run.pk).update(last_seq=7)
    page = client.get(f"/api/runs/{run.pk}/events", {"after": 2, "limit": 3}).json()
    assert [e["seq"] for e in page["events"]] == [3, 4, 5]
    assert (page["next_after"], page["has_more"]) == (5, True)
    rest = client.get(f"/api/runs/{run.pk}/events", {"after": 5}).json()
    assert [e["seq"] for e in rest["events"]] == [6, 7]
    assert rest["has_more"] is False
    assert client.get(f"/api/runs/{run.pk}/events", {"after": "-1"}).status_code == 400


def test_cancel_of_a_queued_run_finishes_it_at_once(api_as, member, app):
    client = api_as(member)
    run_id = start(client).json()["id"]
    body = client.post(f"/api/runs/{run_id}/cancel").json()
    assert body["status"] == "cancelled"
    run = Run.objects.get(pk=run_id)
    assert list(run.events.values_list("type", flat=True)) == ["run.queued", "run.finished"]
    assert run.events.last().data == {
        "status": "cancelled",
        "error": {"code": "cancelled", "message": "Cancelled before it started."},
    }
    assert QueueEntry.objects.get(run_id=run_id).state == State.DONE
    assert client.post(f"/api/runs/{run_id}/cancel").json()["status"] == "cancelled"  # idempotent


def test_cancelling_a_run_queued_behind_another_lets_nothing_start(api_as, member, app):
    client = api_as(member)
    first = start(client).json()
    second = start(client, session_id=first["session_id"], multitask="enqueue").json()
    assert client.post(f"/api/runs/{second['id']}/cancel").json()["status"] == "cancelled"
    assert QueueEntry.objects.get(run_id=second["id"]).state == State.DONE


@pytest.fixture
def waiting_run(api_as, member, app):
    run = Run.objects.get(pk=start(api_as(member)).json()["id"])
    Run.objects.filter(pk=run.pk).update(status=RunStatus.WAITING_HUMAN)
    QueueEntry.objects.filter(run_id=run.pk).update(state=State.PARKED)
    return HumanLoopRequest.objects.create(run=run, external_id="q1", question="Proceed?", request_seq=2)


def test_pending_questions_and_a_reply_wake_the_run(api_as, member, outsider, waiting_run):
    client = api_as(member)
    pending = client.get("/api/human-loop/pending").json()["results"]
    assert [p["request_id"] for p in pending] == [str(waiting_run.pk)]
    assert api_as(outsider).get("/api/human-loop/pending").json()["results"] == []
    client = api_as(member)  # the fixture's one client: sign the member back in
    response = client.post("/api/human-loop/reply", {"request_id": str(waiting_run.pk), "answer": "yes"})
    assert response.status_code == 200
    assert response.json()["status"] == "answered"
    assert QueueEntry.objects.get(run_id=waiting_run.run_id).state == State.READY
    again = client.post("/api/human-loop/reply", {"request_id": str(waiting_run.pk), "answer": "no"})
    assert again.status_code == 409
    waiting_run.refresh_from_db()
    assert waiting_run.answer == "yes"


def test_reply_by_another_user_or_to_an_unknown_request_is_404(api_as, outsider, member, waiting_run):
    assert (
        api_as(outsider)
        .post("/api/human-loop/reply", {"request_id": str(waiting_run.pk), "answer": "x"})
        .status_code
        == 404
    )
    assert (
        api_as(member)
        .post("/api/human-loop/reply", {"request_id": str(uuid.uuid4()), "answer": "x"})
        .status_code
        == 404
    )
    assert api_as(member).post("/api/human-loop/reply", {"answer": "x"}).status_code == 400
    waiting_run.refresh_from_db()
    assert waiting_run.status == HumanLoopStatus.PENDING


def test_a_reply_that_races_the_worker_parking_is_not_lost(member, waiting_run):
    from run_queue import services as queue
    from run_queue.claims import claim_batch

    QueueEntry.objects.filter(run_id=waiting_run.run_id).update(state=State.READY)
    entry = claim_batch(owner="w", limit=1, lease_seconds=30)[0]  # the worker holds it, about to park
    human_loop_reply(user=member, request_id=waiting_run.pk, answer="yes")
    assert queue.entry_park(entry=entry) is True
    assert QueueEntry.objects.get(pk=entry.pk).state == State.READY


def test_api_runs_need_authentication(api, db):
    assert api.get("/api/runs/").status_code == 401
    assert api.post("/api/human-loop/reply", {}).status_code == 401


def test_a_run_queued_behind_another_starts_when_it_finishes(api_as, member, app):
    from runs.models import Session
    from runs.services import run_finish

    client = api_as(member)
    first = start(client).json()
    assert not Session.objects.get(pk=first["session_id"]).queued_runs
    second = start(client, session_id=first["session_id"], multitask="enqueue").json()
    assert Session.objects.get(pk=first["session_id"]).queued_runs
    run_finish(run_id=first["id"], status=RunStatus.FAILED, code="test", message="done")
    assert QueueEntry.objects.get(run_id=second["id"]).state == State.READY


def test_finishing_waits_for_a_start_that_is_queueing_behind_the_run(transactional_db, member):
    """The start decided to queue (the first run was active) but has not committed when the first run
    finishes: the release must wait for it, or the queued run would stay parked for ever."""
    import time

    from django.db import transaction

    from runs.services import run_start, session_release_next

    app = AppFactory(slug="demo")
    first, _ = run_start(user=member, app=app, input={})
    deciding, commit = threading.Event(), threading.Event()
    queued: list = []

    def start_in_progress():
        try:
            with transaction.atomic():
                run, _ = run_start(
                    user=member, app=app, input={}, session_id=first.session_id, multitask="enqueue"
                )
                queued.append(run)
                deciding.set()
                commit.wait(10)
        finally:
            connection.close()

    def finish_first():
        try:
            session_release_next(run_id=first.pk, session_id=first.session_id)
        finally:
            connection.close()

    starter = threading.Thread(target=start_in_progress)
    starter.start()
    assert deciding.wait(10)
    Run.objects.filter(pk=first.pk).update(status=RunStatus.SUCCEEDED)  # the first run has finished
    finisher = threading.Thread(target=finish_first)
    finisher.start()
    time.sleep(0.3)
    assert finisher.is_alive()  # waiting for the start's transaction
    commit.set()
    starter.join(10)
    finisher.join(10)
    assert QueueEntry.objects.get(run_id=queued[0].pk).state == State.READY
