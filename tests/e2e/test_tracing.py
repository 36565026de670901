"""One trace per run across processes: the web process that queued it, the worker that drove it and its calls
to the executor, stored in the Span table and sent to an OTLP backend, with the same ids in the JSON logs."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from observability.models import Span
from run_queue.models import QueueEntry
from runs.models import Run
from tests.e2e.conftest import Client
from tests.e2e.test_runs import answer_pending
from tests.executor_support import wait_until
from tests.stack import start_web, start_worker

pytestmark = pytest.mark.slow

WORKER_SPANS = {"queue.claim", "run.drive", "executor.start_run", "executor.events", "run.follow"}


class OtlpReceiver:
    """The smallest OTLP/HTTP trace receiver: it keeps every span it is sent as (trace id, span id, name)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                export = ExportTraceServiceRequest.FromString(body)
                for resource in export.resource_spans:
                    for scope in resource.scope_spans:
                        received.extend((s.trace_id.hex(), s.span_id.hex(), s.name) for s in scope.spans)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def otlp():
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def traced_stack(stack, transactional_db):
    """Start a web process and a worker of their own, tracing with ``env`` (stopped after the test)."""
    started = []

    def start(**env: str):
        env = {"TRACING": "true", "TRACE_EXPORT_DELAY_MS": "50", **env}
        web, base = start_web(stack.log_dir, **env)
        worker = start_worker(stack.log_dir, "--concurrency", "2", **env)
        started.extend([worker, web])
        return base, web, worker

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def traced(traced_stack, otlp):
    """Tracing to the table and to ``otlp``, JSON logs at INFO."""
    return traced_stack(OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url, LOG_FORMAT="json", LOG_LEVEL="INFO")


def json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_a_run_is_one_trace_across_the_web_process_and_the_worker_in_the_table_the_logs_and_otlp(
    traced, app_on_executor, client_for, otlp
):
    base, web, worker = traced
    app_on_executor("demo", slug="demo")
    alice = client_for("alice")
    alice = Client(base, alice.token)
    started = alice.post("/api/runs/", json={"app": "demo", "input": {"message": "trace me", "delay_ms": 5}})
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    # Parked on its question before the answer: two claims, so two drives.
    wait_until(lambda: QueueEntry.objects.get(run_id=run_id).state == "parked", timeout=20, what="parked")
    answer_pending(alice, run_id)
    wait_until(lambda: Run.objects.get(pk=run_id).is_terminal, timeout=30, what="the run to finish")
    run = Run.objects.get(pk=run_id)
    assert run.status == "succeeded", run.error_detail

    def stored():
        rows = list(Span.objects.filter(trace_id=run.trace_id))
        spans = {span.name: span for span in rows}
        drives = sum(span.name == "run.drive" for span in rows)
        return spans if WORKER_SPANS | {"run.start", "human.reply"} <= set(spans) and drives == 2 else None

    spans = wait_until(stored, timeout=20, what="the run's spans in the table")
    root = spans["run.start"]
    assert root.span_id == run.pk.hex[:16]
    assert root.parent_id == ""
    assert root.process.startswith("web@")
    assert spans["run.drive"].process.startswith("worker@")
    assert spans["queue.enqueue"].parent_id == root.span_id
    assert spans["run.drive"].parent_id == root.span_id
    assert spans["human.reply"].parent_id == root.span_id
    drives = Span.objects.filter(trace_id=run.trace_id, name="run.drive")
    drive_ids = set(drives.values_list("span_id", flat=True))
    assert drives.count() == 2  # one per claim: before the question and after the answer
    follows = Span.objects.filter(trace_id=run.trace_id, name="run.follow")
    follow_ids = set(follows.values_list("span_id", flat=True))
    assert {follow.parent_id for follow in follows} <= drive_ids
    calls = Span.objects.filter(trace_id=run.trace_id, name__startswith="executor.")
    assert {call.parent_id for call in calls} <= drive_ids | follow_ids
    assert {call.parent_id for call in calls if call.name == "executor.events"} <= follow_ids
    assert {"executor.start_run", "executor.send_input", "executor.events"} <= {c.name for c in calls}
    assert all(
        call.kind == "client" and call.attributes["executor.name"] == "test-executor" for call in calls
    )
    assert sum(f.attributes["events.received"] for f in follows) == run.last_seq - 1  # all but run.queued
    every = Span.objects.filter(trace_id=run.trace_id)
    assert {span.attributes.get("run.id") for span in every} == {run_id}

    # The API gives the tree, parents before children.
    tree = alice.get(f"/api/runs/{run_id}/trace").json()
    assert tree["trace_id"] == run.trace_id
    assert tree["run"]["id"] == run_id
    assert tree["spans"][0]["name"] == "run.start"
    assert tree["spans"][0]["depth"] == 0
    seen: set[str] = set()
    for item in tree["spans"]:
        assert item["parent_id"] is None or item["parent_id"] in seen
        seen.add(item["span_id"])
    assert alice.get(f"/api/traces/{run.trace_id}").json()["spans"] == tree["spans"]
    listed = alice.get("/api/traces/?app=demo").json()["results"]
    assert [(t["trace_id"], t["run_id"]) for t in listed] == [(run.trace_id, run_id)]
    assert listed[0]["span_count"] == len(tree["spans"])
    bob = Client(base, client_for("bob").token)
    assert bob.get(f"/api/traces/{run.trace_id}").status_code == 404
    assert bob.get(f"/api/runs/{run_id}/trace").status_code == 404
    assert bob.get("/api/traces/").json()["results"] == []

    # The same spans reached the OTLP receiver.
    wait_until(
        lambda: {name for trace, _, name in otlp.spans if trace == run.trace_id} >= set(spans),
        timeout=20,
        what="the spans at the OTLP receiver",
    )
    sent = {(span_id, name) for trace, span_id, name in otlp.spans if trace == run.trace_id}
    assert {(s.span_id, s.name) for s in Span.objects.filter(trace_id=run.trace_id)} <= sent

    # Both processes' JSON logs name the run and its trace.
    for process in (web, worker):
        lines = [line for line in json_lines(process.log()) if line.get("run_id") == run_id]
        assert lines, f"{process.name} logged nothing about the run:\n{process.log()[-3000:]}"
        # The queue's own lines (claims, settlements) know the run but not its trace.
        assert {line["trace_id"] for line in lines if "trace_id" in line} == {run.trace_id}, process.name
        assert any("trace_id" in line for line in lines), process.name
    worker_lines = [line for line in json_lines(worker.log()) if line.get("trace_id") == run.trace_id]
    assert {line.get("executor_id") for line in worker_lines} == {"test-executor"}
    web_lines = [line for line in json_lines(web.log()) if line.get("trace_id") == run.trace_id]
    assert all(line.get("request_id") for line in web_lines)
    assert any(line.get("span_id") in drive_ids for line in worker_lines)


def test_the_official_instrumentations_add_the_request_the_queries_and_each_http_attempt(
    traced_stack, app_on_executor, client_for
):
    base, _, _ = traced_stack(TRACING_INSTRUMENT="django,psycopg,urllib3")
    app_on_executor("instant", slug="instant")
    alice = Client(base, client_for("alice").token)
    started = alice.post("/api/runs/", json={"app": "instant", "input": {}})
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    wait_until(lambda: Run.objects.get(pk=run_id).is_terminal, timeout=30, what="the run to finish")
    run = Run.objects.get(pk=run_id)

    def stored():
        spans = list(Span.objects.filter(trace_id=run.trace_id))
        names = {span.name for span in spans}
        return spans if {"run.start", "run.follow", "executor.start_run"} <= names else None

    spans = wait_until(stored, timeout=20, what="the run's spans")
    by_id = {span.span_id: span for span in spans}
    root = next(span for span in spans if span.name == "run.start")
    request = by_id[root.parent_id]  # the run is a child of its request's span: one trace for both
    assert request.kind == "server"
    assert request.process.startswith("web@")
    methods = ("http.method", "http.request.method")  # the old and the stable semantic conventions
    assert "POST" in {request.attributes.get(key) for key in methods}
    assert run.trace_id == request.trace_id
    start_call = next(span for span in spans if span.name == "executor.start_run")
    attempts = [span for span in spans if span.parent_id == start_call.span_id and span.kind == "client"]
    assert len(attempts) == 1  # urllib3's span of the one HTTP attempt
    systems = ("db.system", "db.system.name")  # the old and the stable semantic conventions
    queries = [span for span in spans if "postgresql" in {span.attributes.get(key) for key in systems}]
    assert {span.process.split("@")[0] for span in queries} == {"web", "worker"}
