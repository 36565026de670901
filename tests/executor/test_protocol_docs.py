"""The protocol documents say what the reference executor does: every route, every event type, every shape."""

from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from executor.app import ROUTES
from executor.protocol import EVENT_TYPES

DOCS = Path(__file__).resolve().parents[2] / "docs"
SPEC = yaml.safe_load((DOCS / "executor-openapi.yaml").read_text())
PROSE = (DOCS / "executor-protocol.md").read_text()


def schema(name):
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]})


def assert_valid(name, instance):
    errors = [error.message for error in schema(name).iter_errors(instance)]
    assert not errors, (name, instance, errors)


def test_the_spec_is_openapi_3():
    assert SPEC["openapi"].startswith("3.")
    for component in SPEC["components"]["schemas"].values():
        Draft202012Validator.check_schema(component)


def test_every_route_is_documented_and_every_documented_route_exists():
    served = {(r.method, r.pattern.pattern.replace("(?P<run_id>[^/]+)", "{run_id}")) for r in ROUTES}
    documented = {(method.upper(), path) for path, ops in SPEC["paths"].items() for method in ops}
    assert served == documented


def test_every_event_type_is_documented():
    assert set(SPEC["components"]["schemas"]["Event"]["discriminator"]["mapping"]) == set(EVENT_TYPES)
    for event_type in EVENT_TYPES:
        assert f"| `{event_type}` |" in PROSE, event_type


@pytest.mark.parametrize("playbook", ["demo", "fail", "instant"])
def test_real_events_match_the_documented_schemas(executor, playbook):
    client = executor.client()
    run_id = executor.start_run(playbook)
    for event in client.iter_events(run_id):
        assert_valid("Event", {"seq": event.seq, "type": event.type, "data": event.data})
        if event.type == "human_loop.request":
            reply = client.send_input(run_id, request_id=event.data["request_id"], answer="approve")
            assert_valid("InputResponse", reply.data)
    assert_valid("RunStatus", client.get_run(run_id).data)


def test_real_responses_match_the_documented_schemas(executor):
    client = executor.client()
    run_id = executor.start_run("long")
    assert_valid("RunStatus", client.get_run(run_id).data)
    assert_valid("Health", client.health().data)
    for agent in client.list_agents().data:
        assert_valid("Agent", agent)
    assert_valid("CancelResponse", client.cancel_run(run_id).data)
    assert_valid("Error", executor.http("GET", "/v1/runs/nope").json())
    assert_valid("FaultsResponse", executor.faults(latency=None))


def test_a_schema_violation_would_be_caught():
    with pytest.raises(AssertionError):
        assert_valid("Event", {"seq": 1, "type": "tool.result", "data": {"call_id": "c", "ok": True}})
    with pytest.raises(AssertionError):
        assert_valid("Event", {"seq": 0, "type": "run.finished", "data": {"status": "failed"}})
