"""The inbox over real processes: a question stored by the worker process reaches its owner's inbox stream
in the web process through Redis, and so does an answer given over the API; nobody else hears of either."""

from __future__ import annotations

import time

import pytest

from tests.executor_support import wait_until

pytestmark = pytest.mark.slow


def test_a_question_and_its_answer_reach_the_owner_s_inbox_stream_only(
    stack, worker, app_on_executor, client_for
):
    app_on_executor("demo", slug="demo")
    alice, bob = client_for("alice"), client_for("bob")
    mine, theirs = alice.stream("/api/human-loop/events"), bob.stream("/api/human-loop/events")
    time.sleep(0.2)  # both streams are registered (the page reads its list once the stream is open)
    run_id = alice.post("/api/runs/", json={"app": "demo", "input": {"delay_ms": 0}}).json()["id"]

    asked = mine.wait_for("inbox.changed")
    assert asked["id"] is None  # hints have no place in a history
    assert asked["data"] == {"run_id": run_id, "reason": "event"}
    [pending] = alice.get("/api/human-loop/pending?scope=mine").json()["results"]
    assert pending["run_id"] == run_id
    assert pending["app"]["slug"] == "demo"
    assert pending["options"] == ["approve", "reject"]

    seen = len(mine.events)
    reply = alice.post(
        "/api/human-loop/reply", json={"request_id": pending["request_id"], "answer": "approve"}
    )
    assert reply.status_code == 200, reply.text
    answered = wait_until(
        lambda: next((e for e in mine.events[seen:] if e["data"].get("reason") == "answer"), None),
        timeout=10,
        what="the answer's hint",
    )
    assert answered["data"]["request_id"] == pending["request_id"]
    assert alice.get("/api/human-loop/pending?scope=mine").json()["count"] == 0
    wait_until(
        lambda: alice.get(f"/api/runs/{run_id}/").json()["status"] == "succeeded", timeout=20, what="the run"
    )
    assert [e for e in theirs.events if e["type"] == "inbox.changed"] == []
    mine.close()
    theirs.close()
