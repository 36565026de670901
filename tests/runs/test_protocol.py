"""Executor events are checked at the boundary: unknown types are skipped, malformed ones fail the run with
``protocol_error`` (once, no retries), and nothing malformed reaches the store."""

import json

import pytest

from agents.executor_client import ExecutorEvent
from run_queue.claims import claim_batch
from run_queue.models import QueueEntry, State
from run_queue.outcomes import Kind
from runs.models import Run, RunEvent, RunStatus
from runs.orchestrator import Attempt, RunHandler
from runs.protocol import STORED_TYPES, ProtocolViolation, checked
from tests.executor_support import RecordingServer
from tests.factories import AppFactory, ExecutorFactory


def batch(*types_and_data, start=1):
    return [ExecutorEvent(seq, t, d) for seq, (t, d) in enumerate(types_and_data, start=start)]


@pytest.fixture
def claimed(api_as, member, db):
    AppFactory(slug="demo")
    body = api_as(member).post("/api/runs/", {"app": "demo"}, format="json").json()
    [entry] = claim_batch(owner="w1", limit=1, lease_seconds=30)
    return Run.objects.get(pk=body["id"]), entry


@pytest.mark.parametrize(
    ("event_type", "data", "problem"),
    [
        ("todo.update", {"todos": [{"id": "a", "title": "x"}, {"id": "a", "title": "y"}]}, "repeated"),
        ("todo.update", {"todos": [{"id": "a", "status": "someday"}]}, "status"),
        ("todo.update", {"todos": "not a list"}, "todos"),
        ("todo.update", {"todos": [{"title": "no id"}]}, "id"),
        ("run.finished", {"status": "failed", "error": "boom"}, "error"),
        ("run.finished", {"status": "failed", "error": {"code": 7}}, "code"),
        ("human_loop.request", {"request_id": "", "question": "?"}, "request_id"),
        ("human_loop.request", {"request_id": "r", "question": "?", "options": [1]}, "options"),
        ("human_loop.request", {"request_id": "r" * 101, "question": "?"}, "longer"),
        ("message.delta", {"message_id": "m", "text": 5}, "text"),
    ],
)
def test_a_malformed_known_event_is_a_protocol_violation_naming_the_field(event_type, data, problem):
    with pytest.raises(ProtocolViolation, match=problem):
        checked(3, event_type, data)


def test_unknown_event_types_are_skipped_for_forward_compatibility():
    assert checked(1, "agent.thinking", {"anything": True}) is False
    assert checked(1, "run.queued", {}) is False  # ours alone: an executor cannot write it
    assert checked(1, "message.delta", {"message_id": "m", "text": "hi"}) is True


def test_a_batch_with_nothing_to_store_still_moves_the_executor_seq(claimed):
    run, entry = claimed
    stored = RunHandler._store(run, Attempt(entry), batch(("agent.thinking", {}), ("agent.note", {})))
    fresh = Run.objects.get(pk=run.pk)
    assert (fresh.last_seq, fresh.executor_seq, stored.executor_seq) == (1, 2, 2)
    assert RunEvent.objects.filter(run=run).count() == 1


def test_a_malformed_batch_stores_nothing_of_it(claimed):
    run, entry = claimed
    bad = batch(("run.started", {}), ("todo.update", {"todos": [{"id": 1}, {"id": "1"}]}))
    with pytest.raises(ProtocolViolation):
        RunHandler._store(run, Attempt(entry), bad)
    fresh = Run.objects.get(pk=run.pk)
    assert (fresh.status, fresh.last_seq, fresh.executor_seq) == (RunStatus.QUEUED, 1, 0)


def _sse(*events) -> bytes:
    return b"".join(f"id: {e['seq']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def _executor_sending(stream: bytes):
    def respond(request):
        if request.path.startswith("/v1/runs/") and "/events" in request.path:
            return 200, stream
        return 201, {"run_id": "x", "state": "running", "last_seq": 0, "created": True}

    return RecordingServer(respond)


@pytest.mark.parametrize(
    "stream",
    [
        _sse(
            {"seq": 1, "type": "run.started", "data": {}},
            {"seq": 2, "type": "run.finished", "data": {"status": "failed", "error": "not an object"}},
        ),
        _sse(
            {"seq": 1, "type": "run.started", "data": {}},
            {"seq": 2, "type": "message.delta", "data": {"message_id": "m", "text": "nul \u0000 here"}},
        ),
        _sse({"seq": 1, "type": "message.delta", "data": {"message_id": "m", "text": "\ud800"}}),
    ],
    ids=["error-not-an-object", "nul-in-text", "lone-surrogate"],
)
def test_an_executor_sending_malformed_events_fails_the_run_once_with_protocol_error(claimed, stream):
    run, entry = claimed
    with _executor_sending(stream) as server:
        executor = ExecutorFactory(name="bad-executor", base_url=server.url, read_timeout_s=2, retries=0)
        Run.objects.filter(pk=run.pk).update(executor=executor)
        outcome = RunHandler().handle(entry)
    assert (outcome.kind, outcome.error_class) == (Kind.FAIL, "protocol_error")
    assert QueueEntry.objects.get(pk=entry.pk).state == State.LEASED  # the worker settles it (dead)
    assert not RunEvent.objects.filter(run=run, type="message.delta").exists()


def test_the_control_plane_stores_every_event_type_the_protocol_documents():
    """runs.protocol keeps its own list (the control plane imports nothing of the reference executor): it
    must be the documented one."""
    from pathlib import Path

    import yaml

    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs/executor-openapi.yaml").read_text())
    assert set(spec["components"]["schemas"]["Event"]["discriminator"]["mapping"]) == STORED_TYPES
