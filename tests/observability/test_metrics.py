"""``/metrics``: Prometheus's text format behind a token and/or an address allow-list, with the fleet's
figures read from the database at scrape time and this process's open streams."""

from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from observability.metrics import registry
from observability.models import ReconcilerHeartbeat, Span, SpanStatus
from observability.selectors import executor_call_errors_since
from run_queue.models import State
from runs.models import RunStatus
from runs.sse import stream_slots
from tests.observability.health_support import ago, bulk_runs, fleet, queue_entry

TOKEN = "scrape-me-0123456789abcdef"


@pytest.fixture
def with_token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOW_IPS = []


def scrape(client, *, token: str | None = TOKEN, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return client.get("/metrics", **headers, **extra)


def samples(response) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of every line of the answer, as Prometheus's own parser reads it."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(figures, name: str, **labels) -> float:
    return figures[(name, frozenset(labels.items()))]


def test_without_a_token_or_an_allow_list_there_are_no_metrics(client, db, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW_IPS = "", []
    assert scrape(client).status_code == 404
    assert scrape(client, token="").status_code == 404


def test_the_token_opens_the_metrics(client, db, with_token):
    response = scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "no-cache" in response["Cache-Control"]
    assert value(samples(response), "controlplane_database_up") == 1


@pytest.mark.parametrize(
    "authorization",
    [None, "", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer", "Bearer 中文"],
)
def test_a_missing_or_wrong_token_is_a_404(client, db, with_token, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = client.get("/metrics", **headers)
    assert response.status_code == 404
    assert b"controlplane_" not in response.content


def test_the_allow_list_admits_its_networks_only(client, db, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW_IPS = "", ["10.0.0.0/8", "2001:db8::/32"]
    assert scrape(client, token=None, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert scrape(client, token=None, REMOTE_ADDR="2001:db8::5").status_code == 200
    assert scrape(client, token=None, REMOTE_ADDR="192.0.2.7").status_code == 404


def test_the_allow_list_reads_the_client_address_through_trusted_proxies_only(client, db, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW_IPS = "", ["10.0.0.0/8"]
    settings.TRUSTED_PROXIES = ["192.0.2.0/24"]
    forwarded = {"HTTP_X_FORWARDED_FOR": "10.9.9.9"}
    assert scrape(client, token=None, REMOTE_ADDR="192.0.2.1", **forwarded).status_code == 200
    # A client outside writing the header itself is still its own address.
    assert scrape(client, token=None, REMOTE_ADDR="198.51.100.4", **forwarded).status_code == 404
    # The proxy's own address is not the client: a proxy in the allowed network forwards for outsiders.
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    outsider = {"HTTP_X_FORWARDED_FOR": "198.51.100.4"}
    assert scrape(client, token=None, REMOTE_ADDR="10.0.0.1", **outsider).status_code == 404


def test_with_both_configured_a_scrape_needs_both(client, db, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW_IPS = TOKEN, ["127.0.0.1/32"]
    assert scrape(client, REMOTE_ADDR="127.0.0.1").status_code == 200
    assert scrape(client, REMOTE_ADDR="192.0.2.7").status_code == 404
    assert scrape(client, token="wrong", REMOTE_ADDR="127.0.0.1").status_code == 404


def test_plain_http_scrapes_are_not_redirected_to_https(client, db, with_token, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert scrape(client).status_code == 200
    assert client.get("/api/health/summary").status_code == 301  # the rest still is


def test_metrics_refuse_writes(client, db, with_token):
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_openmetrics_is_served_to_who_asks_for_it(client, db, with_token):
    response = scrape(client, HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.endswith(b"# EOF\n")


def test_the_figures_are_the_rows(client, db, with_token, settings):
    settings.METRICS_WINDOW_S = 3600.0
    fleet()
    bulk_runs(2, status=RunStatus.RUNNING, created_at=ago(minutes=4))
    bulk_runs(1, status=RunStatus.WAITING_HUMAN, created_at=ago(hours=5))
    bulk_runs(3, status=RunStatus.SUCCEEDED, created_at=ago(minutes=30), duration_s=0.2)
    bulk_runs(2, status=RunStatus.SUCCEEDED, created_at=ago(minutes=30), duration_s=45)
    failed = bulk_runs(1, status=RunStatus.FAILED, created_at=ago(hours=2), duration_s=7000)
    bulk_runs(4, status=RunStatus.SUCCEEDED, created_at=ago(days=1), duration_s=3)  # before the hour
    failed[0].__class__.objects.filter(pk=failed[0].pk).update(error_class="executor_unavailable")
    queue_entry(State.READY, available_at=ago(seconds=90))
    queue_entry(State.READY, available_at=timezone.now() + timedelta(minutes=1))
    queue_entry(State.LEASED)
    queue_entry(State.LEASED, lease_expires_at=ago(seconds=1))
    queue_entry(State.PARKED)
    queue_entry(State.DEAD)
    queue_entry(State.DONE)
    passed_at = ago(seconds=3)
    ReconcilerHeartbeat.objects.create(owner="reconciler:x", last_pass_at=passed_at)
    span = {
        "trace_id": "a" * 32,
        "span_id": "b" * 16,
        "end": timezone.now(),
        "duration_us": 1,
        "process": "t",
    }
    error = {"error.type": "executor_unavailable"}
    for name in ("executor.start_run", "executor.start_run", "executor.get_run"):
        Span.objects.create(
            name=name, start=ago(minutes=1), status=SpanStatus.ERROR, attributes=error, **span
        )
    Span.objects.create(name="executor.get_run", start=ago(minutes=1), status=SpanStatus.OK, **span)
    Span.objects.create(
        name="executor.get_run", start=ago(hours=2), status=SpanStatus.ERROR, attributes=error, **span
    )
    Span.objects.create(
        name="queue.claim", start=ago(minutes=1), status=SpanStatus.ERROR, attributes=error, **span
    )

    figures = samples(scrape(client))

    assert value(figures, "controlplane_metrics_window_seconds") == 3600
    assert value(figures, "controlplane_queue_depth") == 5
    assert value(figures, "controlplane_queue_leases_expired") == 1
    for state, count in {"ready": 1, "delayed": 1, "leased": 2, "parked": 1, "dead": 1}.items():
        assert value(figures, "controlplane_queue_entries", state=state) == count
    assert 89 <= value(figures, "controlplane_queue_oldest_ready_age_seconds") < 120
    assert value(figures, "controlplane_runs_active", status="running") == 2
    assert value(figures, "controlplane_runs_active", status="waiting_human") == 1
    assert value(figures, "controlplane_runs_active", status="queued") == 0
    assert value(figures, "controlplane_runs_started_recent", status="running") == 2
    assert value(figures, "controlplane_runs_started_recent", status="succeeded") == 5
    assert value(figures, "controlplane_runs_started_recent", status="failed") == 0
    assert value(figures, "controlplane_runs_finished_recent", status="succeeded") == 5
    assert value(figures, "controlplane_runs_finished_recent", status="failed") == 1
    assert value(figures, "controlplane_run_errors_recent", error_class="executor_unavailable") == 1
    histogram = "controlplane_run_duration_seconds_bucket"
    assert value(figures, histogram, le="0.5") == 3
    assert value(figures, histogram, le="30.0") == 3
    assert value(figures, histogram, le="60.0") == 5
    assert value(figures, histogram, le="3600.0") == 5
    assert value(figures, histogram, le="+Inf") == 6
    assert value(figures, "controlplane_run_duration_seconds_gcount") == 6
    assert value(figures, "controlplane_run_duration_seconds_gsum") == pytest.approx(3 * 0.2 + 2 * 45 + 7000)
    errors = "controlplane_executor_call_errors_recent"
    assert value(figures, errors, operation="start_run", error_class="executor_unavailable") == 2
    assert value(figures, errors, operation="get_run", error_class="executor_unavailable") == 1
    assert len([key for key in figures if key[0] == errors]) == 2
    assert value(figures, "controlplane_agents", state="busy") == 2
    assert value(figures, "controlplane_agents", state="offline") == 1
    assert value(figures, "controlplane_agents", state="error") == 0
    assert value(figures, "controlplane_executor_up", executor="exec-up") == 1
    assert value(figures, "controlplane_executor_up", executor="exec-down") == 0
    assert value(figures, "controlplane_executor_up", executor="exec-new") == 0
    assert ("controlplane_executor_up", frozenset({("executor", "exec-off")})) not in figures
    assert value(figures, "controlplane_executors_up") == 1
    assert value(figures, "controlplane_reconciler_last_pass_timestamp_seconds") == pytest.approx(
        passed_at.timestamp()
    )


def test_the_recent_figures_count_the_window_only(client, db, with_token, settings):
    bulk_runs(2, status=RunStatus.SUCCEEDED, created_at=ago(minutes=20), duration_s=60)  # ended 19 min ago
    bulk_runs(1, status=RunStatus.CANCELLED, created_at=ago(minutes=3), duration_s=1)
    settings.METRICS_WINDOW_S = 300.0
    figures = samples(scrape(client))
    assert value(figures, "controlplane_runs_finished_recent", status="succeeded") == 0
    assert value(figures, "controlplane_runs_finished_recent", status="cancelled") == 1
    assert value(figures, "controlplane_run_duration_seconds_bucket", le="+Inf") == 1
    settings.METRICS_WINDOW_S = 1800.0
    figures = samples(scrape(client))
    assert value(figures, "controlplane_runs_finished_recent", status="succeeded") == 2
    assert value(figures, "controlplane_run_duration_seconds_bucket", le="+Inf") == 3


def test_open_streams_of_this_process_are_counted(client, db, with_token):
    before = value(samples(scrape(client)), "controlplane_web_streams_open")
    frees = [stream_slots.take(user_id) for user_id in (101, 101, 102)]
    try:
        assert value(samples(scrape(client)), "controlplane_web_streams_open") == before + 3
    finally:
        for free in frees:
            free()
    assert value(samples(scrape(client)), "controlplane_web_streams_open") == before


def test_a_scrape_reads_the_database_in_as_many_queries_whatever_its_size(db):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            registry.collect().__next__()  # the fleet collector reads everything before its first family
        return len(captured)

    fleet()
    bulk_runs(10, status=RunStatus.SUCCEEDED, created_at=ago(minutes=10), duration_s=2)
    few = queries()
    bulk_runs(5_000, status=RunStatus.SUCCEEDED, created_at=ago(minutes=20), duration_s=2)
    for state in (State.READY, State.DEAD, State.PARKED) * 10:
        queue_entry(state)
    assert queries() == few <= 8


def test_a_scrape_that_cannot_read_the_database_says_so_and_still_answers(
    client, transactional_db, with_token
):
    locker = connections.create_connection("default")  # another session holds the queue's table
    locker.set_autocommit(False)
    try:
        with locker.cursor() as cursor:
            cursor.execute("LOCK TABLE run_queue_queueentry IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '100ms'")
        response = scrape(client)
    finally:
        locker.rollback()
        locker.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert response.status_code == 200
    figures = samples(response)
    assert value(figures, "controlplane_database_up") == 0
    assert not [name for name, _ in figures if name.startswith("controlplane_queue")]
    assert ("controlplane_web_streams_open", frozenset()) in figures


def test_failed_executor_calls_are_found_by_their_own_index(db):
    now = timezone.now()
    span = {"trace_id": "c" * 32, "span_id": "d" * 16, "end": now, "duration_us": 1, "process": "t"}
    ok = [Span(name="executor.get_run", start=now - timedelta(seconds=n % 200), **span) for n in range(5000)]
    Span.objects.bulk_create(ok)
    Span.objects.create(name="executor.get_run", start=now, status=SpanStatus.ERROR, **span)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE observability_span")
    with CaptureQueriesContext(connection) as queries:
        assert executor_call_errors_since(now - timedelta(minutes=5)) == {("get_run", ""): 1}
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + queries.captured_queries[0]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "obs_span_error_idx" in plan, plan
