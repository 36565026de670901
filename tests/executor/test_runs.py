"""Runs on the reference executor: playbooks, idempotent starts and answers, cancel, agents, forgetting."""

import threading

import pytest

from agents.executor_client import ExecutorError
from tests.executor_support import start_body, wait_until


def collect(client, run_id, after=0):
    return list(client.iter_events(run_id, after=after))


def types(events):
    return [event.type for event in events]


def test_the_demo_playbook_runs_end_to_end(executor):
    client = executor.client()
    run_id = str(start_body()["run_id"])
    body = {"message": "count these five words please", "delay_ms": 0}
    client.start_run(
        run_id=run_id,
        app="demo",
        prompt={"version": 2, "text": "Be brief."},
        input=body,
        agent={"kind": "scripted", "playbook": "demo"},
    )
    events = []
    for event in client.iter_events(run_id):
        events.append(event)
        if event.type == "human_loop.request":
            assert executor.run_status(run_id)["state"] == "waiting_input"
            assert event.data["options"] == ["approve", "reject"]
            reply = client.send_input(run_id, request_id=event.data["request_id"], answer="approve")
            assert reply.data["applied"] is True

    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert events[0].type == "run.started"
    assert events[0].data["prompt_version"] == 2
    assert events[-1].type == "run.finished"
    assert events[-1].data == {"status": "succeeded"}
    order = types(events)
    for earlier, later in [
        ("todo.update", "message.delta"),
        ("message.stop", "tool.call"),
        ("tool.call", "tool.result"),
        ("tool.result", "human_loop.request"),
        ("human_loop.request", "human_loop.reply"),
    ]:
        assert order.index(earlier) < order.index(later), (earlier, later)
    call = next(e for e in events if e.type == "tool.call")
    result = next(e for e in events if e.type == "tool.result")
    assert call.data == {"call_id": "call_1", "name": "word_count", "arguments": {"text": body["message"]}}
    assert result.data == {"call_id": "call_1", "ok": True, "result": {"words": 5}}
    request = next(e for e in events if e.type == "human_loop.request")
    reply = next(e for e in events if e.type == "human_loop.reply")
    assert reply.data == {"request_id": request.data["request_id"], "answer": "approve"}
    first_message = "".join(
        e.data["text"] for e in events if e.type == "message.delta" and e.data["message_id"] == "m1"
    )
    assert first_message == f"I will work on: {body['message']}"
    assert order.count("message.delta") > 2
    assert order.count("message.stop") == 2
    todos = [e.data["todos"] for e in events if e.type == "todo.update"]
    assert {t["status"] for t in todos[0]} == {"pending"}
    assert {t["status"] for t in todos[-1]} == {"done"}
    assert any(t["status"] == "in_progress" for t in todos[1])
    assert executor.run_status(run_id)["state"] == "succeeded"


def test_starting_the_same_run_twice_runs_it_once(executor):
    body = start_body(playbook="demo")
    first = executor.http("POST", "/v1/runs", json=body)
    second = executor.http("POST", "/v1/runs", json=body)
    assert (first.status_code, first.json()["created"]) == (201, True)
    assert (second.status_code, second.json()["created"]) == (200, False)
    status = executor.wait_for_state(body["run_id"], "waiting_input")
    assert len(status["pending_requests"]) == 1
    events = []
    for event in executor.client().iter_events(body["run_id"]):
        events.append(event)
        if event.type == "human_loop.request":
            executor.http(
                "POST",
                f"/v1/runs/{body['run_id']}/input",
                json={"request_id": event.data["request_id"], "answer": "ok"},
            )
    assert types(events).count("run.started") == 1
    assert types(events).count("run.finished") == 1
    assert types(events).count("tool.call") == 1
    third = executor.http("POST", "/v1/runs", json=body)
    assert third.json() == {
        "run_id": body["run_id"],
        "state": "succeeded",
        "last_seq": len(events),
        "created": False,
    }


def test_the_same_answer_twice_is_applied_once(executor):
    run_id = executor.start_run("demo")
    status = executor.wait_for_state(run_id, "waiting_input")
    request_id = status["pending_requests"][0]["request_id"]
    answer = {"request_id": request_id, "answer": "approve"}
    first = executor.http("POST", f"/v1/runs/{run_id}/input", json=answer)
    second = executor.http("POST", f"/v1/runs/{run_id}/input", json=answer)
    assert first.json()["applied"] is True
    assert second.status_code == 200
    assert second.json()["applied"] is False
    different = executor.http("POST", f"/v1/runs/{run_id}/input", json={**answer, "answer": "reject"})
    assert different.status_code == 409
    assert different.json()["error"]["code"] == "answer_conflict"
    events = collect(executor.client(), run_id)
    assert types(events).count("human_loop.reply") == 1
    assert events[-1].data["status"] == "succeeded"


def test_cancel_finishes_a_long_run_cancelled_and_is_idempotent(executor):
    run_id = executor.start_run("long")
    wait_until(lambda: executor.run_status(run_id)["last_seq"] >= 3, what="a few ticks")
    first = executor.http("POST", f"/v1/runs/{run_id}/cancel")
    assert first.status_code == 200
    assert first.json()["state"] == "cancelled"
    again = executor.http("POST", f"/v1/runs/{run_id}/cancel")
    assert again.json() == first.json()
    events = collect(executor.client(), run_id)
    assert events[-1].data == {"status": "cancelled"}
    assert types(events).count("run.finished") == 1


def test_cancelling_a_run_that_waits_for_a_human_refuses_later_answers(executor):
    run_id = executor.start_run("demo")
    request_id = executor.wait_for_state(run_id, "waiting_input")["pending_requests"][0]["request_id"]
    assert executor.http("POST", f"/v1/runs/{run_id}/cancel").json()["state"] == "cancelled"
    late = executor.http("POST", f"/v1/runs/{run_id}/input", json={"request_id": request_id, "answer": "a"})
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "run_finished"
    assert executor.run_status(run_id)["pending_requests"] == []


def test_the_fail_playbook_finishes_failed_with_an_error(executor):
    run_id = executor.start_run("fail")
    events = collect(executor.client(), run_id)
    assert events[-1].data["status"] == "failed"
    assert events[-1].data["error"]["code"] == "playbook_failed"
    status = executor.run_status(run_id)
    assert status["state"] == "failed"
    assert status["error"]["code"] == "playbook_failed"


def test_malformed_playbook_input_fails_the_run_not_the_request(executor):
    run_id = executor.start_run("flood", {"count": "many"})
    events = collect(executor.client(), run_id)
    assert events[-1].data["error"]["code"] == "invalid_input"


def test_the_flood_playbook_streams_every_event_in_order(executor):
    run_id = executor.start_run("flood", {"count": 5000})
    events = collect(executor.client(), run_id)
    assert [e.seq for e in events] == list(range(1, 5004))
    deltas = [e.data["text"] for e in events if e.type == "message.delta"]
    assert deltas == [f"{n} " for n in range(1, 5001)]


def test_agents_report_busy_while_running_and_idle_after(executor):
    app = "agents-app"
    run_id = executor.start_run("long", app=app)

    def entry():
        listed = executor.http("GET", "/v1/agents").json()
        return next((a for a in listed if a["app"] == app), None)

    busy = wait_until(entry, what="the agent entry")
    assert busy["agent_id"] == f"{app}/scripted:long"
    assert busy["state"] == "busy"
    assert set(busy) == {"agent_id", "app", "state", "detail", "last_activity"}
    executor.http("POST", f"/v1/runs/{run_id}/cancel")
    assert entry()["state"] == "idle"
    executor.start_run("fail", app=app)
    wait_until(lambda: entry()["state"] == "error", what="the agent in error")


def test_forgetting_runs_cuts_their_streams_and_makes_them_unknown(executor):
    run_id = executor.start_run("long")
    client = executor.client()
    outcome = {}

    def follow():
        try:
            collect(client, run_id)
        except ExecutorError as exc:
            outcome["error"] = exc

    follower = threading.Thread(target=follow)
    follower.start()
    wait_until(lambda: executor.run_status(run_id)["last_seq"] >= 2, what="the run to tick")
    assert executor.faults(forget_runs=True)["forgotten_runs"] >= 1
    follower.join(timeout=10)
    assert outcome["error"].error_class == "network"
    assert executor.http("GET", f"/v1/runs/{run_id}").status_code == 404


def test_events_resume_from_last_event_id(executor):
    run_id = executor.start_run("instant")
    all_events = collect(executor.client(), run_id)
    response = executor.http("GET", f"/v1/runs/{run_id}/events", headers={"Last-Event-ID": "2"})
    ids = [line for line in response.text.splitlines() if line.startswith("id: ")]
    assert ids == [f"id: {e.seq}" for e in all_events[2:]]


@pytest.mark.parametrize("after", [0, 3])
def test_a_finished_stream_ends_after_the_terminal_event(executor, after):
    run_id = executor.start_run("instant")
    executor.wait_for_state(run_id, "succeeded")
    response = executor.http("GET", f"/v1/runs/{run_id}/events?after={after}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.text.rstrip().endswith('"data":{"status":"succeeded"}}')
