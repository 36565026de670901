"""A run that asks a person can always be answered: whatever claimed it again, however many questions are
open, with the id the client saw on the stream. Driven on the real reference executor."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from run_queue import services as queue
from run_queue.models import QueueEntry, State
from run_queue.worker import Worker, WorkerOptions
from runs.events import NewEvent, append_events
from runs.models import HumanLoopRequest, Run, RunStatus
from runs.orchestrator import RunHandler
from tests.factories import AppFactory, ExecutorFactory


@pytest.fixture
def worker():
    return Worker(handler=RunHandler(), options=WorkerOptions(concurrency=1, batch=5, lease_seconds=30))


def step(worker, timeout=15.0):
    """One synchronous worker round, which must not hang on a run that waits."""
    done = threading.Event()

    def round_in_a_thread():
        try:
            worker.step()
            done.set()
        finally:
            connection.close()

    thread = threading.Thread(target=round_in_a_thread, daemon=True)
    thread.start()
    assert done.wait(timeout), "the worker's round did not come back: a handler is holding a waiting run"


@pytest.fixture
def start(api_as, member, executor, transactional_db):
    real = ExecutorFactory(name="real", base_url=executor.base_url, token=executor.token, read_timeout_s=5)
    AppFactory(slug="demo-hl", playbook="demo", executor=real)

    def make():
        body = api_as(member).post("/api/runs/", {"app": "demo-hl", "input": {"delay_ms": 0}}, format="json")
        return body.json()["id"]

    return make


def asked(api, run_id):
    events = api.get(f"/api/runs/{run_id}/events?after=0&limit=1000").json()["events"]
    return next(e for e in events if e["type"] == "human_loop.request")


def claimed_again_by_an_operator(run_id):
    entry = QueueEntry.objects.get(run_id=run_id)
    assert queue.entries_retry_now(ids=[entry.pk]) == 1


def claimed_again_after_a_crash_before_the_park(run_id):
    # The worker stored the question, then died before parking: the entry is leased under a dead lease.
    QueueEntry.objects.filter(run_id=run_id).update(
        state=State.LEASED,
        lease_owner="dead-worker",
        lease_token="00000000-0000-0000-0000-000000000001",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )


@pytest.mark.parametrize(
    "claimed_again", [claimed_again_by_an_operator, claimed_again_after_a_crash_before_the_park]
)
def test_a_waiting_run_claimed_again_parks_and_its_answer_still_reaches_the_executor(
    start, worker, api_as, member, executor, claimed_again
):
    run_id = start()
    step(worker)
    assert Run.objects.get(pk=run_id).status == RunStatus.WAITING_HUMAN
    claimed_again(run_id)
    step(worker)  # it parks at once instead of following a stream that waits on the same person
    assert QueueEntry.objects.get(run_id=run_id).state == State.PARKED
    api = api_as(member)
    question = asked(api, run_id)
    reply = api.post(
        "/api/human-loop/reply",
        {"run_id": run_id, "request_id": question["data"]["request_id"], "answer": "approve"},
        format="json",
    )
    assert reply.status_code == 200, reply.content
    step(worker)
    run = Run.objects.get(pk=run_id)
    assert run.status == RunStatus.SUCCEEDED
    assert executor.run_status(run_id)["state"] == "succeeded"
    assert run.attempts == QueueEntry.objects.get(run_id=run_id).attempts == 3  # one count of attempts


def test_a_run_that_asked_and_was_answered_reports_the_queue_s_count_of_attempts(
    start, worker, api_as, member
):
    run_id = start()
    step(worker)
    question = asked(api_as(member), run_id)
    api_as(member).post(
        "/api/human-loop/reply",
        {"run_id": run_id, "request_id": question["data"]["request_id"], "answer": "approve"},
        format="json",
    )
    step(worker)
    assert Run.objects.get(pk=run_id).attempts == QueueEntry.objects.get(run_id=run_id).attempts == 2
    assert api_as(member).get(f"/api/runs/{run_id}/").json()["attempts"] == 2


def test_the_stream_s_request_id_answers_and_an_ambiguous_one_asks_for_the_run(start, worker, api_as, member):
    first, second = start(), start()
    step(worker)
    api = api_as(member)
    event_id = asked(api, first)["data"]["request_id"]
    # Ids are the executor's, unique within a run only: another executor may repeat them across runs.
    HumanLoopRequest.objects.filter(run_id=second).update(external_id=event_id)
    ambiguous = api.post("/api/human-loop/reply", {"request_id": event_id, "answer": "ok"}, format="json")
    assert ambiguous.status_code == 400
    assert ambiguous.json()["error"]["code"] == "ambiguous_request_id"
    other = api.post(
        "/api/human-loop/reply",
        {"run_id": "00000000-0000-0000-0000-000000000000", "request_id": event_id, "answer": "ok"},
        format="json",
    )
    assert other.status_code == 404
    answered = api.post(
        "/api/human-loop/reply", {"run_id": second, "request_id": event_id, "answer": "ok"}, format="json"
    )
    assert answered.status_code == 200
    assert answered.json()["run_id"] == second
    # with the other one answered, the id alone is no longer ambiguous
    alone = api.post("/api/human-loop/reply", {"request_id": event_id, "answer": "ok"}, format="json")
    assert (alone.status_code, alone.json()["run_id"]) == (200, first)


def test_a_run_with_two_open_questions_waits_until_both_are_answered(api_as, member, db):
    AppFactory(slug="two-questions")
    run_id = api_as(member).post("/api/runs/", {"app": "two-questions"}, format="json").json()["id"]
    ask = [NewEvent("run.started", {})] + [
        NewEvent("human_loop.request", {"request_id": name, "question": "?"}) for name in ("q1", "q2")
    ]
    append_events(run_id=run_id, events=ask)
    Run.objects.filter(pk=run_id).update(waiting_since=timezone.now() - timedelta(minutes=10))
    deadline = Run.objects.get(pk=run_id).deadline
    append_events(run_id=run_id, events=[NewEvent("human_loop.reply", {"request_id": "q1", "answer": "a"})])
    assert Run.objects.get(pk=run_id).status == RunStatus.WAITING_HUMAN  # q2 is still open
    append_events(run_id=run_id, events=[NewEvent("human_loop.reply", {"request_id": "q2", "answer": "b"})])
    run = Run.objects.get(pk=run_id)
    assert run.status == RunStatus.RUNNING
    assert run.waiting_since is None
    assert run.deadline - deadline >= timedelta(minutes=10)  # waiting on people does not use up the deadline
    assert set(HumanLoopRequest.objects.filter(run=run).values_list("status", flat=True)) == {"closed"}
