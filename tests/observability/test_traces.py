"""The trace store: spans written by the exporter, read back as a tree, listed, guarded like their runs,
and pruned."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core import tracing
from observability.models import OperatorAction, OperatorGrant, Span
from observability.traces import prune_spans
from tests.factories import AppFactory, RoleBindingFactory, RoleFactory, RunFactory, UserFactory


def add_span(run, name, *, span_id, parent="", offset_ms=0, duration_ms=10, status="unset", **attributes):
    start = run.created_at + timedelta(milliseconds=offset_ms)
    return Span.objects.create(
        trace_id=run.trace_id,
        span_id=span_id,
        parent_id=parent,
        name=name,
        start=start,
        end=start + timedelta(milliseconds=duration_ms),
        duration_us=duration_ms * 1000,
        status=status,
        attributes={"run.id": str(run.pk), **attributes} if name == "run.start" else attributes,
        process="test@host:1",
    )


def traced_run(*, user=None, app=None, finished_after_ms=None, created_at=None):
    run = RunFactory(
        user=user or UserFactory(),
        app=app or AppFactory(slug="demo"),
        created_at=created_at or timezone.now(),
    )
    if finished_after_ms is not None:
        run.finished_at = run.created_at + timedelta(milliseconds=finished_after_ms)
        run.status = "succeeded"
        run.save(update_fields=["finished_at", "status"])
    root = run.pk.hex[:16]
    add_span(run, "run.start", span_id=root, duration_ms=5)
    add_span(run, "run.drive", span_id="d" * 16, parent=root, offset_ms=20, duration_ms=100)
    add_span(run, "executor.events", span_id="e" * 16, parent="d" * 16, offset_ms=30, duration_ms=2)
    add_span(run, "executor.start_run", span_id="c" * 16, parent="d" * 16, offset_ms=21, status="error")
    add_span(run, "late", span_id="f" * 16, parent="0" * 15 + "1", offset_ms=50)  # its parent is not stored
    return run


@pytest.mark.django_db
def test_a_trace_is_its_spans_depth_first_with_children_in_start_order(api_as):
    run = traced_run()
    body = api_as(run.user).get(f"/api/runs/{run.pk}/trace").json()
    assert body["trace_id"] == run.trace_id
    assert body["run"] == {"id": str(run.pk), "app": "demo", "status": run.status}
    rows = [(s["name"], s["depth"], s["offset_ms"]) for s in body["spans"]]
    assert rows == [
        ("run.start", 0, 0.0),
        ("run.drive", 1, 20.0),
        ("executor.start_run", 2, 21.0),
        ("executor.events", 2, 30.0),
        ("late", 0, 50.0),
    ]
    assert body["duration_ms"] == 120.0
    assert body["spans"][2]["status"] == "error"
    assert body["spans"][0]["parent_id"] is None
    assert api_as(run.user).get(f"/api/traces/{run.trace_id}").json() == body


@pytest.mark.django_db
def test_a_trace_is_read_by_whoever_may_read_its_run_and_by_operators(api_as):
    run = traced_run()
    outsider = UserFactory()
    assert api_as(outsider).get(f"/api/traces/{run.trace_id}").status_code == 404
    assert api_as(outsider).get(f"/api/runs/{run.pk}/trace").status_code == 404
    assert api_as(UserFactory(is_staff=True)).get(f"/api/traces/{run.trace_id}").status_code == 200
    role = RoleFactory()
    RoleBindingFactory(role=role, user=outsider)
    OperatorGrant.objects.create(role=role, action=OperatorAction.DASHBOARD_VIEW)
    assert api_as(outsider).get(f"/api/traces/{run.trace_id}").status_code == 200


@pytest.mark.django_db
def test_unknown_and_malformed_trace_ids_are_404_in_the_error_shape(api_as):
    user = UserFactory(is_staff=True)
    for trace_id in ["0" * 32, "not-a-trace", "A" * 32]:
        response = api_as(user).get(f"/api/traces/{trace_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "trace_not_found"
    run = RunFactory()  # a run with no spans (traced before its spans were pruned, or with tracing off)
    assert api_as(run.user).get(f"/api/runs/{run.pk}/trace").status_code == 404


@pytest.mark.django_db
def test_a_trace_without_a_run_is_for_operators_only(api_as):
    now = timezone.now()
    Span.objects.create(
        trace_id="a" * 32, span_id="b" * 16, name="GET /api/", start=now, end=now, duration_us=0, process="p"
    )
    assert api_as(UserFactory()).get(f"/api/traces/{'a' * 32}").status_code == 404
    body = api_as(UserFactory(is_staff=True)).get(f"/api/traces/{'a' * 32}").json()
    assert body["run"] is None
    assert [s["name"] for s in body["spans"]] == ["GET /api/"]


@pytest.mark.django_db
def test_recent_traces_are_the_readers_newest_first_filtered_and_paged(api_as):
    alice, bob = UserFactory(), UserFactory()
    app, other = AppFactory(slug="demo"), AppFactory(slug="other")
    old = timezone.now() - timedelta(minutes=5)
    fast = traced_run(user=alice, app=app, finished_after_ms=50, created_at=old)
    slow = traced_run(user=alice, app=app, finished_after_ms=5000, created_at=old + timedelta(minutes=1))
    elsewhere = traced_run(user=alice, app=other, finished_after_ms=50, created_at=old + timedelta(minutes=2))
    traced_run(user=bob, app=app, finished_after_ms=50)
    RunFactory(user=alice, app=app)  # no spans: no trace

    def listed(query=""):
        response = api_as(alice).get(f"/api/traces/{query}")
        assert response.status_code == 200, response.content
        return response.json()

    assert [t["run_id"] for t in listed()["results"]] == [str(elsewhere.pk), str(slow.pk), str(fast.pk)]
    first = listed()["results"][0]
    assert first == {
        "trace_id": elsewhere.trace_id,
        "run_id": str(elsewhere.pk),
        "app": "other",
        "status": "succeeded",
        "started_at": first["started_at"],
        "duration_ms": 50.0,
        "span_count": 5,
        "error_count": 1,
    }
    assert [t["run_id"] for t in listed("?app=demo")["results"]] == [str(slow.pk), str(fast.pk)]
    assert [t["run_id"] for t in listed("?min_duration_ms=1000")["results"]] == [str(slow.pk)]
    assert [t["run_id"] for t in listed("?max_duration_ms=1000&app=demo")["results"]] == [str(fast.pk)]
    assert listed("?status=failed")["results"] == []
    page = listed("?limit=2")
    assert [t["run_id"] for t in page["results"]] == [str(elsewhere.pk), str(slow.pk)]
    following = api_as(alice).get(page["next"]).json()
    assert [t["run_id"] for t in following["results"]] == [str(fast.pk)]
    assert following["next"] is None
    operator = UserFactory(is_staff=True)
    assert len(api_as(operator).get("/api/traces/").json()["results"]) == 4


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=201", "status=bogus", "min_duration_ms=-1", "before=yesterday", "app=Not%20a%20slug"],
)
def test_bad_trace_list_parameters_are_400(api_as, query):
    response = api_as(UserFactory()).get(f"/api/traces/?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.django_db
def test_the_trace_api_needs_a_signed_in_user(api):
    assert api.get("/api/traces/").status_code in (401, 403)
    assert api.get(f"/api/traces/{'a' * 32}").status_code in (401, 403)


@pytest.mark.django_db
def test_old_spans_are_pruned_in_batches(settings):
    settings.TRACE_RETENTION_DAYS = 7
    run = traced_run()
    Span.objects.filter(name="late").update(start=timezone.now() - timedelta(days=8))
    Span.objects.filter(name="run.drive").update(start=timezone.now() - timedelta(days=9))
    assert prune_spans(batch=1) == 1
    assert prune_spans(batch=10) == 1
    assert prune_spans(batch=10) == 0
    assert set(Span.objects.filter(trace_id=run.trace_id).values_list("name", flat=True)) == {
        "run.start",
        "executor.events",
        "executor.start_run",
    }
    settings.TRACE_RETENTION_DAYS = 0
    Span.objects.update(start=timezone.now() - timedelta(days=900))
    assert prune_spans() == 0


@pytest.mark.django_db(transaction=True)
def test_spans_are_written_with_forced_root_ids_errors_and_events(local_tracing):
    import uuid

    run_id, trace_id = uuid.uuid4(), uuid.uuid4().hex
    with tracing.span(
        "run.start", ids=(int(trace_id, 16), run_id.int >> 64), attributes={"run.id": str(run_id)}
    ):
        inner_parent = tracing.traceparent_of(tracing.current())
    ids = tracing.parse_traceparent(inner_parent)
    assert ids == tracing.parse_traceparent(tracing.run_traceparent(trace_id, run_id))

    def fail_in_span():
        with tracing.span("run.drive", parent=inner_parent) as drive:
            drive.add_event("retry", {"http.response.status_code": 503})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_in_span()
    tracing.record_span(
        "queue.claim", parent=inner_parent, start_ns=1_700_000_000_000_000_000, error=("timeout", "slow")
    )
    local_tracing.flush()
    rows = {span.name: span for span in Span.objects.filter(trace_id=trace_id)}
    assert rows["run.start"].span_id == run_id.hex[:16]
    assert rows["run.start"].parent_id == ""
    assert rows["run.drive"].parent_id == run_id.hex[:16]
    assert rows["run.drive"].status == "error"
    assert "RuntimeError" in rows["run.drive"].status_message
    assert rows["run.drive"].attributes["event.retry"] == [{"http.response.status_code": 503}]
    assert rows["run.drive"].attributes["event.exception"][0]["exception.type"] == "RuntimeError"
    assert rows["queue.claim"].attributes["error.type"] == "timeout"
    assert rows["queue.claim"].start.year == 2023
    assert rows["queue.claim"].process == "test@host:1"
    assert local_tracing.written == 3


def test_tracing_off_costs_nothing_and_records_nothing():
    assert not tracing.state.enabled
    with tracing.span("anything", parent="00-" + "a" * 32 + "-" + "b" * 16 + "-01") as span:
        assert not span.is_recording()
        assert tracing.traceparent_of(span, "fallback") == "fallback"
    assert tracing.log_ids() == {}
    assert tracing.parse_traceparent("00-" + "0" * 32 + "-" + "b" * 16 + "-01") is None
    assert tracing.parse_traceparent("garbage") is None


@pytest.mark.django_db
def test_the_reconcilers_retention_step_prunes_old_spans(settings, monkeypatch):
    from observability import reconciler as module

    settings.TRACE_RETENTION_DAYS = 1
    kept, old = traced_run(), traced_run()
    Span.objects.filter(trace_id=old.trace_id).update(start=timezone.now() - timedelta(days=2))
    monkeypatch.setattr(module, "SPAN_BATCH", 2)  # several batches in one pass
    reconciler = module.Reconciler(options=module.ReconcilerOptions())
    try:
        assert reconciler.retention() == 5
    finally:
        reconciler.close()
    assert not Span.objects.filter(trace_id=old.trace_id).exists()
    assert Span.objects.filter(trace_id=kept.trace_id).count() == 5
