"""The runs page in the browser: my runs, filters kept in the URL, paging, and others' runs only for a
reader who asks for them. Runs are rows made by the factory: the page only reads them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from agents.models import Action
from runs.models import RunStatus
from tests.browser.conftest import check_accessibility, sign_in
from tests.factories import AppFactory, RunFactory, UserFactory, grant

pytestmark = pytest.mark.slow

PAGE_SIZE = 20  # static/portal/js/runs.js


@pytest.fixture
def apps(transactional_db):
    return {"notes": AppFactory(slug="notes", name="Notes"), "ops": AppFactory(slug="ops", name="Ops")}


def test_my_runs_are_listed_and_filtered_by_status_and_app_in_the_url(browsing, apps):
    me, stranger = UserFactory(username="alice"), UserFactory(username="stranger")
    for app in apps.values():
        grant(me, Action.USE, app)
    RunFactory(
        app=apps["notes"], user=me, status=RunStatus.SUCCEEDED, input={"message": "summarise the notes"}
    )
    RunFactory(app=apps["ops"], user=me, status=RunStatus.FAILED, input={"message": "restart the ops box"})
    RunFactory(app=apps["notes"], user=stranger, input={"message": "a stranger's secret"})
    browser = browsing()
    sign_in(browser, me)
    page = browser.page()
    page.goto("/portal/runs/")
    expect(page.locator("#runs-status-line")).to_have_text("2 runs")
    expect(page.locator("#runs-rows")).not_to_contain_text("secret")
    expect(page.get_by_label("Whose runs")).to_be_hidden()  # no run.view_all anywhere
    page.get_by_label("Status").select_option("failed")
    expect(page.locator("#runs-status-line")).to_have_text("1 run")
    expect(page.locator("#runs-rows tr")).to_contain_text("restart the ops box")
    expect(page).to_have_url(re.compile(r"status=failed"))
    page.reload()  # the filter is in the URL
    expect(page.get_by_label("Status")).to_have_value("failed")
    expect(page.locator("#runs-rows tr")).to_have_count(1)
    page.get_by_label("Status").select_option("")
    page.get_by_label("App").select_option("notes")
    expect(page.locator("#runs-rows tr")).to_have_count(1)
    row = page.locator("#runs-rows tr")
    expect(row).to_contain_text("Notes")
    expect(row).to_contain_text("succeeded")
    run_id = row.get_attribute("data-run")
    expect(row.get_by_role("link")).to_have_attribute("href", f"/portal/runs/{run_id}")
    expect(row.locator(".run-owner")).to_have_text("")  # mine: no owner shown
    page.go_back()
    expect(page.get_by_label("App")).to_have_value("")
    check_accessibility(page)


def test_the_date_range_narrows_the_list(browsing, apps):
    me = UserFactory(username="alice")
    now = datetime.now(UTC)
    RunFactory(app=apps["notes"], user=me, created_at=now - timedelta(days=10), input={"message": "old"})
    RunFactory(app=apps["notes"], user=me, input={"message": "today's"})
    browser = browsing()
    sign_in(browser, me)
    page = browser.page()
    page.goto("/portal/runs/")
    expect(page.locator("#runs-rows tr")).to_have_count(2)
    page.get_by_label("Created from").fill((now - timedelta(days=3)).strftime("%Y-%m-%d"))
    expect(page.locator("#runs-rows tr")).to_have_count(1)
    expect(page.locator("#runs-rows")).to_contain_text("today's")
    page.get_by_label("Created from").fill("")
    page.get_by_label("Created to").fill((now - timedelta(days=5)).strftime("%Y-%m-%d"))
    expect(page.locator("#runs-rows tr")).to_have_count(1)
    expect(page.locator("#runs-rows")).to_contain_text("old")


def test_more_runs_than_a_page_are_paged_with_the_total(browsing, apps):
    me = UserFactory(username="alice")
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for n in range(PAGE_SIZE + 5):
        RunFactory(
            app=apps["notes"], user=me, created_at=start + timedelta(minutes=n), input={"message": f"run {n}"}
        )
    browser = browsing()
    sign_in(browser, me)
    page = browser.page()
    page.goto("/portal/runs/")
    expect(page.locator("#runs-status-line")).to_have_text(f"{PAGE_SIZE + 5} runs")
    expect(page.locator("#runs-rows tr")).to_have_count(PAGE_SIZE)
    expect(page.locator("#runs-page")).to_have_text("Page 1 of 2")
    expect(page.get_by_role("button", name="Previous")).to_be_disabled()
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#runs-rows tr")).to_have_count(5)
    expect(page.locator("#runs-page")).to_have_text("Page 2 of 2")
    expect(page.locator("#runs-rows tr").last).to_contain_text("run 0")
    expect(page.get_by_role("button", name="Next")).to_be_disabled()
    expect(page).to_have_url(re.compile(r"page=2"))
    page.reload()
    expect(page.locator("#runs-rows tr")).to_have_count(5)
    page.get_by_role("button", name="Previous").click()
    expect(page.locator("#runs-rows tr").first).to_contain_text(f"run {PAGE_SIZE + 4}")
    check_accessibility(page)


def test_a_reader_sees_others_runs_only_with_the_toggle_and_never_an_outsiders(browsing, apps):
    reader, owner, outsider = (UserFactory(username=name) for name in ("reviewer", "owner", "outsider"))
    grant(reader, Action.RUN_VIEW_ALL, apps["notes"])
    RunFactory(app=apps["notes"], user=owner, input={"message": "the owner's notes run"})
    RunFactory(app=apps["ops"], user=outsider, input={"message": "the outsider's ops run"})
    RunFactory(app=apps["notes"], user=reader, input={"message": "my own run"})
    browser = browsing()
    sign_in(browser, reader)
    page = browser.page()
    page.goto("/portal/runs/")
    expect(page.locator("#runs-rows tr")).to_have_count(1)
    expect(page.locator("#runs-rows")).to_contain_text("my own run")
    page.get_by_label("Whose runs").select_option("visible")
    expect(page.locator("#runs-rows tr")).to_have_count(2)
    others = page.locator("#runs-rows tr", has_text="the owner's notes run")
    expect(others.locator(".run-owner")).to_have_text("owner")
    expect(page.locator("#runs-rows")).not_to_contain_text("outsider")
    expect(page).to_have_url(re.compile(r"scope=visible"))
    check_accessibility(page)
