"""Plugins through the tool gateway in a real run: the worker hands the executor the app's plugins and a
run-scoped token, the scripted agent calls them over HTTP, and each call is on the run's stream, in its trace
and in the audit table."""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from gateway.models import Outcome, PluginCall
from observability.models import Span
from runs.models import Run
from tests.e2e.conftest import Client
from tests.executor_support import free_port, wait_until
from tests.stack import start_web, start_worker

pytestmark = pytest.mark.slow


class Page(BaseHTTPRequestHandler):
    """What http_fetch fetches (on loopback, allowed explicitly), and a redirect to the metadata address."""

    def do_GET(self) -> None:
        if self.path == "/to-metadata":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        body = b"weekly report: 3 incidents"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def page_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def samples_database():
    """A database of its own for db_query, with a table of sample rows (never the control plane's)."""
    from tests.stack import database_url

    name = f"cp_samples_{uuid.uuid4().hex[:6]}"
    admin = database_url().rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE incidents (id int PRIMARY KEY, title text, severity int)")
        conn.execute(
            "INSERT INTO incidents VALUES (1, 'disk full', 2), (2, 'dns down', 1), (3, 'slow api', 3)"
        )
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def tools_stack(stack, django_db_blocker, tmp_path_factory, samples_database):
    """A web process and a worker that offer plugins: the worker mints tokens for TOOL_GATEWAY_URL (this
    web process), the web process runs the calls: http_fetch may reach 127.0.0.1 (allowed explicitly),
    db_query the samples database."""
    log_dir = tmp_path_factory.mktemp("tools")
    port = free_port()
    env = {
        "PLUGINS_ENABLED": "echo,http_fetch,db_query",
        "TOOL_GATEWAY_URL": f"http://127.0.0.1:{port}",
        # The metadata address is an allowed *host* here, so that only the address policy can refuse it.
        "HTTP_FETCH_ALLOW_HOSTS": "127.0.0.1,169.254.169.254",
        "HTTP_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",
        "DB_QUERY_DATABASES": "samples",
        "DB_QUERY_DATABASE_URL_SAMPLES": samples_database,
    }
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
        complete = len(found) == 2 and all(s.parent_id in spans for s in found)
        return (spans, found) if complete else None

    spans, found = wait_until(gateway_spans, timeout=15, what="the gateway's spans")
    assert {s.span_id for s in found} == {c.span_id for c in audit}
    for span in found:
        # Under the worker's call that started the run on the executor, whose traceparent it forwards.
        assert spans[span.parent_id].name == "executor.start_run"
        assert span.process.startswith("web@")


def test_both_plugins_in_one_run_appear_as_events_in_the_trace_and_in_the_audit(
    tools_stack, app_on_executor, client_for, page_server
):
    base, _ = tools_stack
    app = app_on_executor("tools", slug="tools-both")
    app.plugins = ["http_fetch", "db_query"]
    app.save()
    bob = Client(base, client_for("bob").token)
    calls = [
        {"tool": "http_fetch", "arguments": {"url": f"{page_server}/report"}},
        {
            "tool": "db_query",
            "arguments": {
                "sql": "SELECT id, title FROM incidents WHERE severity <= $1 ORDER BY id",
                "params": [2],
            },
        },
        {"tool": "http_fetch", "arguments": {"url": f"{page_server}/to-metadata"}},
        {"tool": "db_query", "arguments": {"sql": "DELETE FROM incidents"}},
        {"tool": "echo", "arguments": {}},
    ]
    run_id = bob.post("/api/runs/", json={"app": "tools-both", "input": {"calls": calls}}).json()["id"]
    stream = bob.stream(f"/api/runs/{run_id}/events")
    assert stream.wait_for("run.finished")["data"]["status"] == "succeeded"
    results = {e["data"]["call_id"]: e["data"] for e in stream.events if e["type"] == "tool.result"}
    fetched = results["call_1"]["result"]
    assert (fetched["status"], fetched["text"]) == (200, "weekly report: 3 incidents")
    queried = results["call_2"]["result"]
    assert queried["rows"] == [[1, "disk full"], [2, "dns down"]]
    assert [c["name"] for c in queried["columns"]] == ["id", "title"]
    assert results["call_3"]["ok"] is False
    assert results["call_3"]["error"]["code"] == "address_not_allowed"  # the redirect, re-checked
    assert (results["call_4"]["ok"], results["call_4"]["error"]["code"]) == (False, "statement_not_allowed")
    # Not among the run's plugins: the executor refuses it without asking (the gateway would: 403, audited;
    # tests/gateway), so it leaves no audit row.
    assert (results["call_5"]["ok"], results["call_5"]["error"]["code"]) == (False, "unknown_tool")
    audit = {c.call_id: c for c in PluginCall.objects.filter(run_id=run_id)}
    assert {k: (c.plugin, c.outcome) for k, c in audit.items()} == {
        "call_1": ("http_fetch", Outcome.OK),
        "call_2": ("db_query", Outcome.OK),
        "call_3": ("http_fetch", Outcome.ERROR),
        "call_4": ("db_query", Outcome.ERROR),
    }
    assert audit["call_3"].error_code == "address_not_allowed"
    trace_id = Run.objects.get(pk=run_id).trace_id

    def spans():
        names = sorted(s.name for s in Span.objects.filter(trace_id=trace_id, name__startswith="plugin."))
        return names if len(names) == 4 else None

    assert wait_until(spans, timeout=15, what="the plugin spans") == [
        "plugin.db_query",
        "plugin.db_query",
        "plugin.http_fetch",
        "plugin.http_fetch",
    ]
    failed = Span.objects.get(trace_id=trace_id, span_id=audit["call_4"].span_id)
    assert (failed.status, failed.attributes["error.type"]) == ("error", "PluginError")
