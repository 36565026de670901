"""Plugins through the tool gateway in a real run: the worker hands the executor the app's plugins and a
run-scoped token, the scripted agent calls them over HTTP, and each call is on the run's stream, in its trace
and in the audit table."""

from __future__ import annotations

import pytest

from gateway.models import Outcome, PluginCall
from observability.models import Span
from runs.models import Run
from tests.e2e.conftest import Client
from tests.executor_support import free_port, wait_until
from tests.stack import start_web, start_worker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tools_stack(stack, django_db_blocker, tmp_path_factory):
    """A web process and a worker that offer plugins: the worker mints tokens for TOOL_GATEWAY_URL (this
    web process), the web process runs the calls."""
    log_dir = tmp_path_factory.mktemp("tools")
    port = free_port()
    env = {"PLUGINS_ENABLED": "echo", "TOOL_GATEWAY_URL": f"http://127.0.0.1:{port}"}
    with django_db_blocker.unblock():
        web, base = start_web(log_dir, port=port, **env)
    worker = start_worker(log_dir, "--concurrency", "2", **env)
    yield base, env
    worker.stop()
    web.stop()


def test_a_scripted_agent_calls_plugins_through_the_gateway(tools_stack, app_on_executor, client_for):
    base, _ = tools_stack
    app = app_on_executor("tools", slug="tools")
    app.plugins = ["echo"]
    app.save()
    alice = client_for("alice")
    alice = Client(base, alice.token)
    calls = [
        {"tool": "echo", "arguments": {"message": "one"}},
        {"tool": "echo", "arguments": {"message": "two"}},
    ]
    created = alice.post("/api/runs/", json={"app": "tools", "input": {"calls": calls}})
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    stream = alice.stream(f"/api/runs/{run_id}/events")
    assert stream.wait_for("run.finished")["data"]["status"] == "succeeded"
    results = [e["data"] for e in stream.events if e["type"] == "tool.result"]
    assert results == [
        {"call_id": "call_1", "ok": True, "result": {"echo": {"message": "one"}}},
        {"call_id": "call_2", "ok": True, "result": {"echo": {"message": "two"}}},
    ]
    audit = list(PluginCall.objects.filter(run_id=run_id).order_by("id"))
    assert [(c.plugin, c.call_id, c.outcome, c.status) for c in audit] == [
        ("echo", "call_1", Outcome.OK, 200),
        ("echo", "call_2", Outcome.OK, 200),
    ]
    run = Run.objects.get(pk=run_id)
    assert {c.trace_id for c in audit} == {run.trace_id}

    def gateway_spans():
        spans = {s.span_id: s for s in Span.objects.filter(trace_id=run.trace_id)}
        found = [s for s in spans.values() if s.name == "plugin.echo"]
        return (spans, found) if len(found) == 2 else None

    spans, found = wait_until(gateway_spans, timeout=15, what="the gateway's spans")
    assert {s.span_id for s in found} == {c.span_id for c in audit}
    for span in found:
        # Under the worker's call that started the run on the executor, whose traceparent it forwards.
        assert spans[span.parent_id].name == "executor.start_run"
        assert span.process.startswith("web@")
