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
from observability.models import OperatorAction, OperatorGrant
from run_queue.models import QueueEntry, State
from runs.models import RunStatus
from tests.browser.conftest import check_accessibility, sign_in
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
