"""The operators' dashboard in the browser: agent status chips that change live when the executor's agents
do (the real reference executor, polled by the real monitor, its events over the real SSE stream), the
waterfall of a finished run, the 404 page and no nav entry for anyone else, and both languages."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from agents.models import Action, ExecutorHealth
from observability.agent_status import AgentStatusMonitor
from observability.models import OperatorAction, OperatorGrant, Span
from run_queue.models import QueueEntry, State
from runs.models import Run, RunStatus
from tests.browser.conftest import check_accessibility, conversation_ready, sign_in
from tests.executor_support import wait_until
from tests.factories import (
    AppFactory,
    ExecutorFactory,
    RoleBindingFactory,
    RoleFactory,
    RunFactory,
    UserFactory,
    grant,
)

pytestmark = pytest.mark.slow

_slugs = itertools.count()  # the executor remembers every test's runs: one app (and agent) per test
TRACES_PAGE = 50  # static/portal/js/traces.js


@pytest.fixture
def operator(transactional_db):
    """An operator by a role's dashboard.view grant (not staff)."""
    user = UserFactory(username="operator")
    role = RoleFactory(slug="operators")
    RoleBindingFactory(role=role, user=user)
    OperatorGrant.objects.create(role=role, action=OperatorAction.DASHBOARD_VIEW)
    return user


@pytest.fixture
def monitor(settings):
    """The agent-status monitor as the reconciler runs it, one poll when the test says: every observation
    counts at once (AGENT_STATUS_DEBOUNCE=1), and no poll is skipped as too recent."""
    settings.AGENT_STATUS_DEBOUNCE = 1
    settings.AGENT_STATUS_POLL_S = 0
    made = AgentStatusMonitor()
    yield made
    made.close()


def api(stack, user, method: str, path: str, **kwargs) -> requests.Response:
    token = Token.objects.get_or_create(user=user)[0].key
    return requests.request(
        method, stack.base + path, headers={"Authorization": f"Token {token}"}, timeout=10, **kwargs
    )


def agent_state(stack, agent_id: str) -> str | None:
    """What the executor itself says of the agent now (GET /v1/agents)."""
    listing = stack.executor.http("GET", "/v1/agents").json()
    return next((agent["state"] for agent in listing if agent["agent_id"] == agent_id), None)


def test_an_agent_chip_changes_without_a_reload_when_its_agent_changes_state(
    browsing, stack, worker, app_on_executor, operator, monitor
):
    app = app_on_executor("long", slug=f"chips-{next(_slugs)}", name="Long agent")
    grant(operator, Action.USE, app)
    agent_id = f"{app.slug}/scripted:long"
    browser = browsing()
    sign_in(browser, operator)
    page = browser.page()
    page.goto("/dashboard/")
    expect(page.locator("#agents[data-live]")).to_be_attached()  # the list read, the stream open
    chip = page.locator(f'.agent-chip[data-agent="{agent_id}"]')
    expect(chip).to_have_count(0)
    page.evaluate("() => { window.notReloaded = true; }")

    response = api(stack, operator, "POST", "/api/runs/", json={"app": app.slug, "input": {"seconds": 120}})
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    wait_until(lambda: agent_state(stack, agent_id) == "busy", timeout=30, what="the agent busy")
    assert monitor.poll_once() >= 1
    expect(chip).to_have_attribute("data-state", "busy")
    expect(chip.locator(".agent-state")).to_have_text("busy")
    expect(chip.locator(".agent-where")).to_have_text("browser-executor")

    assert api(stack, operator, "POST", f"/api/runs/{run_id}/cancel").status_code == 200
    wait_until(lambda: agent_state(stack, agent_id) == "idle", timeout=30, what="the agent idle")
    assert monitor.poll_once() >= 1
    expect(chip).to_have_attribute("data-state", "idle")
    expect(chip.locator(".agent-state")).to_have_text("idle")
    assert page.evaluate("() => window.notReloaded") is True
    expect(chip).to_have_count(1)
    check_accessibility(page)


def test_someone_not_an_operator_gets_the_not_found_page_and_no_nav_entry(browsing, alice):
    browser = browsing()
    sign_in(browser, alice)
    page = browser.page()
    page.goto("/portal/")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs")).to_be_visible()
    expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)
    for path in ["/dashboard/", "/dashboard/traces/", "/dashboard/traces/0af7651916cd43dd8448eb211c80319c"]:
        response = page.goto(path)
        assert response.status == 404
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        expect(page.locator("#agents, #traces-rows, #waterfall")).to_have_count(0)


def test_an_operator_finds_the_dashboard_in_the_nav(browsing, operator):
    browser = browsing()
    sign_in(browser, operator)
    page = browser.page()
    page.goto("/portal/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Operators' dashboard")).to_be_visible()
    expect(page.locator('[data-nav="dashboard"]')).to_have_attribute("aria-current", "page")
    page.get_by_role("navigation", name="Operators' pages").get_by_role("link", name="Traces").click()
    expect(page.get_by_role("heading", name="Traces", exact=True)).to_be_visible()


def test_the_dashboard_shows_the_health_summary_recent_runs_and_dead_entries(browsing, operator):
    down = ExecutorFactory(name="gpu-box")
    ExecutorHealth.objects.create(executor=down, up=False, failed_polls=4, last_error="connect: refused")
    app = AppFactory(slug="notes", name="Notes", executor=down)
    grant(operator, Action.RUN_VIEW_ALL, app)
    started = timezone.now() - timedelta(minutes=5)
    RunFactory(
        app=app,
        user=UserFactory(username="owner"),
        status=RunStatus.SUCCEEDED,
        started_at=started,
        finished_at=started + timedelta(milliseconds=2500),
    )
    dead = RunFactory(app=app, user=operator, status=RunStatus.FAILED, started_at=started)
    QueueEntry.objects.create(
        run_id=dead.pk,
        state=State.DEAD,
        attempts=5,
        last_error_class="executor_unavailable",
        last_error_detail="gpu-box did not answer",
    )
    browser = browsing()
    sign_in(browser, operator)
    page = browser.page()
    page.goto("/dashboard/")
    executors = page.locator('[data-health="executors"]')
    expect(executors.locator(".figure")).to_have_text("0 up, 1 down")
    expect(executors).to_have_class(re.compile(r"\btrouble\b"))
    expect(executors.locator('li[data-executor="gpu-box"]')).to_contain_text("connect: refused")
    queue = page.locator('[data-health="queue"]')
    expect(queue.locator('li[data-count="dead"] .count-value')).to_have_text("1")
    runs = page.locator('[data-health="runs"]')
    expect(runs.locator(".figure")).to_have_text("2 runs")
    expect(runs.locator('li[data-count="failed"]')).to_contain_text("failed")
    expect(page.locator("#health-reconciler-age")).to_have_text("Last pass: never")
    recent = page.locator("#recent-rows tr")
    expect(recent).to_have_count(2)
    succeeded = page.locator("#recent-rows tr", has_text="succeeded")
    expect(succeeded).to_contain_text("2.5 s")
    expect(succeeded).to_contain_text("owner")
    row = page.locator(f'#dead-rows tr[data-run="{dead.pk}"]')
    expect(row).to_contain_text("executor_unavailable: gpu-box did not answer")
    expect(row.get_by_role("link", name="Open the dead run of notes")).to_have_attribute(
        "href", f"/portal/runs/{dead.pk}"
    )
    check_accessibility(page)


def test_the_dashboard_speaks_chinese(browsing, operator):
    app = AppFactory(slug="notes", name="Notes")
    grant(operator, Action.RUN_VIEW_ALL, app)
    RunFactory(app=app, user=operator, status=RunStatus.SUCCEEDED)
    browser = browsing(locale="zh-CN")
    sign_in(browser, operator)
    page = browser.page()
    page.goto("/dashboard/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("#recent-rows tr .status")).to_have_text("成功")
    expect(page.get_by_role("columnheader", name="耗时").first).to_be_visible()
    expect(page.locator("#health-reconciler-age")).not_to_have_text("—")
    check_accessibility(page)


REAL_RUN_SPANS = {
    "run.start",
    "queue.enqueue",
    "queue.claim",
    "run.drive",
    "executor.start_run",
    "executor.events",
    "executor.send_input",
    "run.follow",
    "human.reply",
}


def test_the_waterfall_of_a_finished_run_shows_its_spans_from_the_web_process_and_the_worker(
    browsing, stack, worker, app_on_executor, operator
):
    app = app_on_executor("demo", slug=f"traced-{next(_slugs)}", name="Traced agent")
    grant(operator, Action.USE, app)
    browser = browsing()
    sign_in(browser, operator)
    page = browser.page()
    page.goto(f"/portal/apps/{app.slug}/new")
    conversation_ready(page)
    page.get_by_label("Message").fill("trace me")
    page.get_by_role("button", name="Send").click()
    turn = page.locator(".turn").first
    turn.get_by_role("button", name="approve").click()
    expect(turn.locator(".run-status .status")).to_have_text("succeeded")
    run = Run.objects.get(pk=turn.get_attribute("data-run"))

    def stored() -> int | None:
        # Each process exports its spans in batches: wait for the last of both (the second drive's).
        names = list(Span.objects.filter(trace_id=run.trace_id).values_list("name", flat=True))
        complete = set(names) >= REAL_RUN_SPANS and names.count("run.drive") == 2
        return len(names) if complete else None

    count = wait_until(stored, timeout=30, what="the run's spans in the table")
    link = turn.locator(".run-status").get_by_role("link", name="Trace")
    expect(link).to_have_attribute("href", f"/dashboard/traces/{run.trace_id}")
    link.click()
    rows = page.locator("#waterfall .span-row")
    expect(rows).to_have_count(count)
    expect(rows.first.locator(".span-name")).to_have_text("run.start")
    expect(rows.first).to_have_attribute("data-depth", "0")
    assert all(rows.nth(n).get_attribute("data-depth") != "0" for n in range(1, count))
    names = {name.strip() for name in page.locator("#waterfall .span-name").all_inner_texts()}
    assert names == set(Span.objects.filter(trace_id=run.trace_id).values_list("name", flat=True))
    expect(page.locator("#trace-run .status")).to_have_text("succeeded")
    detail = page.locator("#span-detail")
    rows.first.get_by_role("button").click()
    expect(detail).to_contain_text("web@")
    root_attributes = detail.locator(".span-attributes")
    expect(root_attributes.get_by_role("row", name="run.id")).to_contain_text(str(run.pk))
    page.locator(".span-row", has_text="run.drive").first.get_by_role("button").click()
    expect(detail.locator(".span-detail-name")).to_have_text("run.drive")
    expect(detail).to_contain_text("worker@")
    page.locator(".span-row", has_text="executor.start_run").get_by_role("button").click()
    attributes = detail.locator(".span-attributes")
    expect(attributes.get_by_role("row", name="executor.name")).to_contain_text("browser-executor")
    check_accessibility(page)


def stored_trace(run, *, origin) -> list[Span]:
    """A run's trace as the exporters store it, from three processes: the API's root span, the queue,
    the worker's drive with a failed executor call and its retry, then the stream followed."""
    web, worker = "web@box:100", "worker@box:200"

    def span(span_id, parent, name, start_ms, duration_ms, process, **fields):
        start = origin + timedelta(milliseconds=start_ms)
        return Span(
            trace_id=run.trace_id,
            span_id=span_id,
            parent_id=parent,
            name=name,
            start=start,
            end=start + timedelta(milliseconds=duration_ms),
            duration_us=int(duration_ms * 1000),
            process=process,
            attributes={"run.id": str(run.pk), **fields.pop("attributes", {})},
            **fields,
        )

    return Span.objects.bulk_create(
        [
            span("a000000000000001", "", "run.start", 0, 1000, web, kind="server"),
            span("a000000000000002", "a000000000000001", "queue.enqueue", 10, 5, web, kind="producer"),
            span("a000000000000003", "a000000000000001", "queue.claim", 50, 8, worker, kind="consumer"),
            span("a000000000000004", "a000000000000003", "run.drive", 60, 900, worker),
            span(
                "a000000000000005",
                "a000000000000004",
                "executor.start_run",
                70,
                200,
                worker,
                kind="client",
                status="error",
                status_message="executor_unavailable: connection refused",
                attributes={"executor.name": "gpu-box", "error.type": "executor_unavailable"},
            ),
            span(
                "a000000000000006",
                "a000000000000004",
                "executor.start_run",
                300,
                100,
                worker,
                kind="client",
                status="ok",
                attributes={"executor.name": "gpu-box", "http.response.status_code": 201},
            ),
            span(
                "a000000000000007",
                "a000000000000004",
                "run.follow",
                410,
                540,
                worker,
                attributes={"events.received": 12, "events.stored": 12},
            ),
        ]
    )


def test_the_trace_list_filters_and_the_waterfall_shows_the_spans(browsing, operator):
    app = AppFactory(slug="notes", name="Notes")
    origin = timezone.now() - timedelta(minutes=2)
    run = RunFactory(
        app=app, status=RunStatus.SUCCEEDED, started_at=origin, finished_at=origin + timedelta(seconds=1)
    )
    stored_trace(run, origin=origin)
    browser = browsing()
    sign_in(browser, operator)
    page = browser.page()
    page.goto("/dashboard/traces/")
    row = page.locator(f'#traces-rows tr[data-trace="{run.trace_id}"]')
    expect(row).to_contain_text("notes")
    expect(row).to_contain_text("succeeded")
    expect(row.locator("td").nth(4)).to_have_text("7")
    expect(row.locator("td").nth(5)).to_have_text("1")
    page.get_by_label("Status").select_option("failed")
    expect(page.locator("#traces-status-line")).to_have_text("No trace matches.")
    expect(page).to_have_url(re.compile(r"status=failed"))
    page.get_by_label("Status").select_option("")
    page.get_by_label("At least (ms)").fill("5000")
    filters = page.get_by_role("search", name="Filter traces")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#traces-rows tr")).to_have_count(0)
    page.get_by_label("At least (ms)").fill("")
    page.get_by_label("At most (ms)").fill("5000")
    page.get_by_label("App").fill("notes")
    filters.get_by_role("button", name="Apply").click()
    expect(row).to_be_visible()
    check_accessibility(page)

    row.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/traces/{run.trace_id}$"))
    expect(page.locator("#waterfall[data-ready]")).to_be_attached()
    rows = page.locator("#waterfall .span-row")
    expect(rows).to_have_count(7)
    names = [name.strip() for name in page.locator("#waterfall .span-name").all_inner_texts()]
    assert names == [
        "run.start",
        "queue.enqueue",
        "queue.claim",
        "run.drive",
        "executor.start_run",
        "executor.start_run",
        "run.follow",
    ]
    depths = [rows.nth(n).get_attribute("data-depth") for n in range(7)]
    assert depths == ["0", "1", "1", "2", "3", "3", "3"]
    failed = page.locator("#span-a000000000000005")
    expect(failed).to_have_class(re.compile(r"\berror\b"))
    expect(failed.locator(".span-error")).to_have_text("error")
    expect(page.locator("#waterfall .span-error")).to_have_count(1)
    expect(failed.locator(".span-duration")).to_have_text("200 ms")
    expect(page.locator("#trace-duration")).to_have_text("1 s")
    # Bars on the trace's time line: the failed call starts 7 % in and lasts a fifth of the trace.
    track = page.locator("#span-a000000000000005 .span-track").bounding_box()
    bar = page.locator("#span-a000000000000005 .span-bar").bounding_box()
    assert abs((bar["x"] - track["x"]) / track["width"] - 0.07) < 0.01
    assert abs(bar["width"] / track["width"] - 0.2) < 0.01
    root = page.locator("#span-a000000000000001 .span-bar").bounding_box()
    assert abs(root["width"] / track["width"] - 1) < 0.01

    failed.get_by_role("button").click()
    expect(failed.get_by_role("button")).to_have_attribute("aria-pressed", "true")
    detail = page.locator("#span-detail")
    expect(detail.locator(".span-detail-name")).to_have_text("executor.start_run")
    expect(detail).to_contain_text("error — executor_unavailable: connection refused")
    expect(detail).to_contain_text("worker@box:200")
    attributes = detail.locator(".span-attributes")
    expect(attributes.get_by_role("row", name="error.type")).to_contain_text("executor_unavailable")
    expect(attributes.get_by_role("row", name="run.id")).to_contain_text(str(run.pk))
    page.locator("#span-a000000000000007").get_by_role("button").click()
    received = detail.locator(".span-attributes").get_by_role("row", name="events.received")
    expect(received).to_contain_text("12")
    expect(failed.get_by_role("button")).to_have_attribute("aria-pressed", "false")
    expect(page).to_have_url(re.compile(r"#span-a000000000000007$"))
    page.reload()  # the chosen span is in the address
    expect(detail.locator(".span-detail-name")).to_have_text("run.follow")
    expect(page.locator("#trace-run").get_by_role("link", name="notes")).to_have_attribute(
        "href", f"/portal/runs/{run.pk}"
    )
    check_accessibility(page)


def test_an_unknown_trace_says_so(browsing, operator):
    browser = browsing()
    sign_in(browser, operator)
    page = browser.page()
    page.goto("/dashboard/traces/0af7651916cd43dd8448eb211c80319c")
    expect(page.locator("#trace-status")).to_have_text("There is no such trace, or none you may see.")
    expect(page.locator("#waterfall .span-row")).to_have_count(0)


def test_an_operators_run_links_to_its_trace_when_it_has_one(browsing, operator):
    app = AppFactory(slug="notes", name="Notes")
    grant(operator, Action.USE, app)
    origin = timezone.now() - timedelta(minutes=2)
    traced = RunFactory(app=app, user=operator, status=RunStatus.SUCCEEDED, started_at=origin)
    stored_trace(traced, origin=origin)
    untraced = RunFactory(app=app, user=operator, session=traced.session, status=RunStatus.SUCCEEDED)
    browser = browsing()
    sign_in(browser, operator)
    page = browser.page()
    page.goto(f"/portal/runs/{traced.pk}")
    link = page.locator(f"#run-{traced.pk} .run-status").get_by_role("link", name="Trace")
    expect(link).to_have_attribute("href", f"/dashboard/traces/{traced.trace_id}")
    expect(page.locator(f"#run-{untraced.pk} .run-status .status")).to_have_text("succeeded")
    expect(page.locator(f"#run-{untraced.pk} .trace-link")).to_have_count(0)
    link.click()
    expect(page.locator("#waterfall .span-row")).to_have_count(7)


def test_a_member_sees_no_trace_link_on_their_run(browsing, alice):
    app = AppFactory(slug="notes", name="Notes")
    grant(alice, Action.USE, app)
    origin = timezone.now() - timedelta(minutes=2)
    run = RunFactory(app=app, user=alice, status=RunStatus.SUCCEEDED, started_at=origin)
    stored_trace(run, origin=origin)
    browser = browsing()
    sign_in(browser, alice)
    page = browser.page()
    page.goto(f"/portal/runs/{run.pk}")
    expect(page.locator(f"#run-{run.pk} .run-status .status")).to_have_text("succeeded")
    expect(page.locator(".trace-link")).to_have_count(0)


def test_the_waterfall_fits_a_phone_and_speaks_chinese(browsing, operator):
    origin = timezone.now() - timedelta(minutes=2)
    run = RunFactory(app=AppFactory(slug="notes"), status=RunStatus.SUCCEEDED, started_at=origin)
    stored_trace(run, origin=origin)
    browser = browsing(locale="zh-CN", viewport={"width": 375, "height": 740})
    sign_in(browser, operator)
    page = browser.page()
    page.goto(f"/dashboard/traces/{run.trace_id}")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("#waterfall .span-row")).to_have_count(7)
    expect(page.locator("#trace-run .status")).to_have_text("成功")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    page.locator("#span-a000000000000005").get_by_role("button").click()
    expect(page.locator("#span-detail .span-detail-name")).to_have_text("executor.start_run")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    check_accessibility(page)
    page.goto("/dashboard/traces/")
    expect(page.locator(f'#traces-rows tr[data-trace="{run.trace_id}"] .status')).to_have_text("成功")
    check_accessibility(page)


def test_the_trace_list_pages_back_in_time(browsing, operator):
    app = AppFactory(slug="notes", name="Notes")
    owner = UserFactory()  # one owner for all: a user each made this test 20 s long (password hashing)
    origin = timezone.now() - timedelta(hours=1)
    roots = []
    for n in range(TRACES_PAGE + 5):
        run = RunFactory(app=app, user=owner, status=RunStatus.SUCCEEDED, started_at=origin)
        start = origin + timedelta(seconds=n)
        roots.append(
            Span(
                trace_id=run.trace_id,
                span_id=f"{n + 1:016x}",
                name="run.start",
                start=start,
                end=start + timedelta(milliseconds=5),
                duration_us=5000,
                process="web@box:1",
                attributes={"run.id": str(run.pk)},
            )
        )
    Span.objects.bulk_create(roots)
    browser = browsing()
    sign_in(browser, operator)
    page = browser.page()
    page.goto("/dashboard/traces/")
    rows = page.locator("#traces-rows tr")
    expect(rows).to_have_count(TRACES_PAGE)
    expect(rows.first).to_have_attribute("data-trace", roots[-1].trace_id)
    expect(page.get_by_role("button", name="Newest")).to_be_disabled()
    page.get_by_role("button", name="Older").click()
    expect(rows).to_have_count(5)
    expect(rows.last).to_have_attribute("data-trace", roots[0].trace_id)
    expect(page).to_have_url(re.compile(r"before="))
    expect(page.get_by_role("button", name="Older")).to_be_disabled()
    page.reload()
    expect(rows).to_have_count(5)
    page.get_by_role("button", name="Newest").click()
    expect(rows).to_have_count(TRACES_PAGE)


def test_the_waterfall_of_a_run_still_going_says_it_is_a_snapshot(browsing, operator):
    origin = timezone.now() - timedelta(seconds=30)
    run = RunFactory(app=AppFactory(slug="notes"), status=RunStatus.RUNNING, started_at=origin)
    stored_trace(run, origin=origin)
    browser = browsing()
    sign_in(browser, operator)
    page = browser.page()
    page.goto(f"/dashboard/traces/{run.trace_id}")
    expect(page.locator("#waterfall .span-row")).to_have_count(7)
    expect(page.locator("#trace-status")).to_have_text(
        "The run is still going: load the page again for its later spans."
    )
