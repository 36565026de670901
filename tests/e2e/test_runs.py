"""Runs end to end: real web, worker and executor processes over HTTP, PostgreSQL and Redis."""

from __future__ import annotations

import signal
import time

import pytest

from run_queue.models import QueueEntry
from runs.models import Run
from tests.executor_support import wait_until
from tests.stack import start_worker

pytestmark = pytest.mark.slow

DEMO_ORDER = [
    "run.queued",
    "run.started",
    "todo.update",
    "message.delta",
    "message.stop",
    "tool.call",
    "tool.result",
    "human_loop.request",
]


def first_index(types: list[str], wanted: str) -> int:
    return types.index(wanted)


def answer_pending(client, run_id: str, answer: str = "approve") -> None:
    def pending():
        found = [p for p in client.get("/api/human-loop/pending").json()["results"] if p["run_id"] == run_id]
        return found[0] if found else None

    request = wait_until(pending, timeout=20, what="a pending question")
    response = client.post(
        "/api/human-loop/reply", json={"request_id": request["request_id"], "answer": answer}
    )
    assert response.status_code == 200, response.text


def test_a_run_streams_live_from_start_to_finish_with_a_human_answer(
    stack, worker, app_on_executor, client_for
):
    app_on_executor("demo", slug="demo")
    alice = client_for("alice")
    run = alice.post("/api/runs/", json={"app": "demo", "input": {"message": "hello there", "delay_ms": 5}})
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    stream = alice.stream(f"/api/runs/{run_id}/events")
    stream.wait_for("human_loop.request")
    types = stream.types()
    positions = [first_index(types, t) for t in DEMO_ORDER]
    assert positions == sorted(positions), types
    assert Run.objects.get(pk=run_id).status == "waiting_human"
    # No worker thread waits on a person: the entry is parked (the worker settles just after the event).
    wait_until(lambda: QueueEntry.objects.get(run_id=run_id).state == "parked", timeout=10, what="parked")

    answer_pending(alice, run_id)
    finished = stream.wait_for("run.finished")
    assert finished["data"]["status"] == "succeeded"
    assert "human_loop.reply" in stream.types()
    assert stream.seqs() == list(range(1, len(stream.events) + 1))  # contiguous, no duplicate

    final = alice.get(f"/api/runs/{run_id}/").json()
    assert final["status"] == "succeeded"
    assert final["last_seq"] == len(stream.events)
    page = alice.get(f"/api/runs/{run_id}/events", params={"after": 0, "limit": 1000}).json()
    assert [(e["seq"], e["type"], e["data"]) for e in page["events"]] == [
        (seq, e["type"], e["data"]) for seq, e in zip(stream.seqs(), stream.events, strict=True)
    ]
    todos = alice.get(f"/api/runs/{run_id}/todos").json()
    last_update = [e for e in stream.events if e["type"] == "todo.update"][-1]["data"]["todos"]
    assert [(t["id"], t["title"], t["status"]) for t in todos] == [
        (t["id"], t["title"], t["status"]) for t in last_update
    ]
    assert stack.executor.run_status(run_id)["state"] == "succeeded"


def test_start_endpoint_answers_with_the_stream(stack, worker, app_on_executor, client_for):
    app_on_executor("instant", slug="instant")
    bob = client_for("bob")
    stream = bob.stream("/api/runs/start", method="POST", json={"app": "instant", "input": {}})
    assert stream.wait_for("run.finished")["data"]["status"] == "succeeded"
    stream.done.wait(5)
    assert stream.done.is_set()  # the response ends after run.finished
    assert stream.types()[0] == "run.queued"
    assert stream.response.headers["X-Run-ID"]


def test_reconnect_with_last_event_id_has_no_gap_and_no_duplicate(stack, worker, app_on_executor, client_for):
    app_on_executor("long", slug="long")
    carol = client_for("carol")
    run_id = carol.post("/api/runs/", json={"app": "long", "input": {"seconds": 2}}).json()["id"]
    first = carol.stream(f"/api/runs/{run_id}/events")
    wait_until(lambda: len(first.events) >= 5, timeout=20, what="a few events")
    first.close()
    time.sleep(0.5)  # events keep coming while the client is away
    last_id = first.events[-1]["id"]
    second = carol.stream(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": last_id})
    second.wait_for("run.finished", timeout=30)
    seqs = first.seqs() + second.seqs()
    assert seqs == list(range(1, len(seqs) + 1)), (
        [e["id"] for e in first.events],
        last_id,
        [e["id"] for e in second.events][:5],
    )


def test_killed_worker_s_run_is_finished_by_another_without_duplicates(
    stack, transactional_db, app_on_executor, client_for
):
    app_on_executor("long", slug="long-kill")
    dave = client_for("dave")
    victim = start_worker(stack.log_dir, "--lease-seconds", "2")
    run_id = dave.post("/api/runs/", json={"app": "long-kill", "input": {"seconds": 3}}).json()["id"]
    wait_until(lambda: Run.objects.get(pk=run_id).last_seq >= 5, timeout=20, what="the run to be under way")
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(timeout=10)
    rescuer = start_worker(stack.log_dir, "--lease-seconds", "2")
    try:
        wait_until(lambda: Run.objects.get(pk=run_id).status == "succeeded", timeout=40, what="the rescue")
    finally:
        rescuer.stop()
    seqs = list(Run.objects.get(pk=run_id).events.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    events = list(Run.objects.get(pk=run_id).events.values_list("type", flat=True))
    assert events.count("run.started") == 1  # the executor ran it once
    assert events.count("run.finished") == 1
    assert QueueEntry.objects.get(run_id=run_id).attempts == 2


def test_transient_executor_failures_are_retried_and_counted(stack, worker, app_on_executor, client_for):
    app_on_executor("instant", slug="instant-retry")
    erin = client_for("erin")
    stack.executor.faults(fail={"count": 5, "status": 503, "path_prefix": "/v1/runs", "method": "POST"})
    run_id = erin.post("/api/runs/", json={"app": "instant-retry", "input": {}}).json()["id"]
    wait_until(lambda: Run.objects.get(pk=run_id).status == "succeeded", timeout=30, what="success")
    run = Run.objects.get(pk=run_id)
    assert run.attempts >= 2  # 4 client retries exhausted the first attempt, the second went through
    assert QueueEntry.objects.get(run_id=run_id).last_error_class == "http_status"
    stack.executor.clear_faults()


def test_permanent_executor_failure_fails_the_run_with_its_class(stack, worker, app_on_executor, client_for):
    app_on_executor("instant", slug="instant-400")
    frank = client_for("frank")
    stack.executor.faults(fail={"count": 1, "status": 400, "path_prefix": "/v1/runs", "method": "POST"})
    run_id = frank.post("/api/runs/", json={"app": "instant-400", "input": {}}).json()["id"]
    stream = frank.stream(f"/api/runs/{run_id}/events")
    finished = stream.wait_for("run.finished", timeout=30)
    assert finished["data"]["status"] == "failed"
    assert finished["data"]["error"]["code"] == "http_status"
    run = Run.objects.get(pk=run_id)
    assert (run.status, run.error_class, run.attempts) == ("failed", "http_status", 1)
    stack.executor.clear_faults()


def test_a_playbook_failure_fails_the_run(stack, worker, app_on_executor, client_for):
    app_on_executor("fail", slug="failing")
    gina = client_for("gina")
    run_id = gina.post("/api/runs/", json={"app": "failing", "input": {}}).json()["id"]
    wait_until(lambda: Run.objects.get(pk=run_id).status == "failed", timeout=30, what="failure")
    assert Run.objects.get(pk=run_id).error_class == "playbook_failed"


def test_cancel_while_running_and_while_waiting_for_a_human(stack, worker, app_on_executor, client_for):
    app_on_executor("long", slug="long-cancel")
    app_on_executor("demo", slug="demo-cancel")
    hank = client_for("hank")
    running = hank.post("/api/runs/", json={"app": "long-cancel", "input": {"seconds": 30}}).json()["id"]
    waiting = hank.post("/api/runs/", json={"app": "demo-cancel", "input": {"delay_ms": 1}}).json()["id"]
    wait_until(lambda: Run.objects.get(pk=running).last_seq >= 3, timeout=20, what="running")
    wait_until(lambda: Run.objects.get(pk=waiting).status == "waiting_human", timeout=20, what="waiting")
    for run_id in (running, waiting):
        response = hank.post(f"/api/runs/{run_id}/cancel")
        assert response.status_code == 200, stack.web.log()[-4000:]
    for run_id in (running, waiting):
        wait_until(
            lambda run_id=run_id: Run.objects.get(pk=run_id).status == "cancelled",
            timeout=30,
            what=f"{run_id} cancelled",
        )
        assert stack.executor.run_status(run_id)["state"] == "cancelled"  # the executor was told
