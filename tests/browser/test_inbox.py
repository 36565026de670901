"""The inbox in the browser: questions waiting for me appear and disappear live, with the count in the
header, and answering one from here resumes its run."""

from __future__ import annotations

import itertools
import json

import pytest
import requests
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from agents.models import Action
from runs.models import Run, RunStatus
from tests.browser.conftest import ARTIFACTS, check_accessibility, sign_in
from tests.executor_support import wait_until
from tests.factories import UserFactory, grant

pytestmark = pytest.mark.slow


# One slug per test: the web process keeps an app read by slug for CONFIG_CACHE_S, so a test that made
# "demo" again (a new row, after the last test's rows were truncated) could meet the last test's copy.
_slugs = itertools.count()


@pytest.fixture
def alice(app_on_executor):
    app = app_on_executor("demo", slug=f"inbox-demo-{next(_slugs)}", name="Demo agent")
    user = UserFactory(username="alice")
    grant(user, Action.USE, app)
    user.app_slug = app.slug
    return user


def start_demo_run(stack, user) -> str:
    """Over the API with a token, as another client of the same person would."""
    token = Token.objects.get_or_create(user=user)[0].key
    response = requests.post(
        stack.base + "/api/runs/",
        json={"app": user.app_slug, "input": {"message": "ship it", "delay_ms": 0}},
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_the_inbox_shows_a_new_question_without_a_reload_and_clears_it_when_answered_elsewhere(
    browsing, stack, worker, alice
):
    browser = browsing()
    sign_in(browser, alice)
    page = browser.page()
    page.goto("/portal/inbox")
    expect(page.locator("#inbox-status")).to_have_text("No questions are waiting for you.")
    badge = page.locator("#inbox-count")
    expect(badge).to_be_hidden()
    check_accessibility(page)
    loaded = page.evaluate("performance.timeOrigin")

    run_id = start_demo_run(stack, alice)
    item = page.locator(f'.inbox-item[data-run="{run_id}"]')
    expect(item).to_be_visible(timeout=20_000)
    expect(item.get_by_role("heading")).to_have_text("Demo agent")
    expect(item.get_by_role("button", name="approve")).to_be_visible()
    expect(item.get_by_role("button", name="reject")).to_be_visible()
    expect(item.get_by_label("Your answer")).to_be_visible()
    expect(item.locator("time.waited")).to_have_text("Waiting for less than a minute")
    session_id = str(Run.objects.get(pk=run_id).session_id)
    expect(item.get_by_role("link", name="Open the conversation")).to_have_attribute(
        "href", f"/portal/sessions/{session_id}#run-{run_id}"
    )
    expect(badge).to_be_visible()
    expect(badge).to_have_attribute("data-count", "1")
    expect(page.get_by_role("link", name="Inbox 1 question waiting")).to_be_visible()
    expect(page.locator("#inbox-status")).to_have_text("1 question is waiting for you.")
    check_accessibility(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "inbox-with-a-question.png"), full_page=True)

    other_tab = browser.page()  # another tab of the same person: its own page and stream
    other_tab.goto("/portal/")
    expect(other_tab.locator("#inbox-count")).to_have_attribute("data-count", "1")
    other_tab.goto("/portal/inbox")
    other_tab.locator(f'.inbox-item[data-run="{run_id}"]').get_by_label("Your answer").fill("Yes, go ahead.")
    other_tab.get_by_role("button", name="Send answer").click()
    expect(other_tab.locator("#inbox-status")).to_have_text("No questions are waiting for you.")

    expect(item).to_have_count(0)
    expect(badge).to_be_hidden()
    expect(page.locator("#inbox-status")).to_have_text("No questions are waiting for you.")
    assert page.evaluate("performance.timeOrigin") == loaded  # never reloaded
    wait_until(lambda: Run.objects.get(pk=run_id).status == RunStatus.SUCCEEDED, timeout=20, what="the run")


def test_answering_from_the_inbox_with_an_option_resumes_the_run(browsing, stack, worker, alice):
    browser = browsing()
    sign_in(browser, alice)
    run_id = start_demo_run(stack, alice)
    wait_until(
        lambda: Run.objects.get(pk=run_id).status == RunStatus.WAITING_HUMAN, timeout=20, what="the question"
    )
    page = browser.page()
    page.goto("/portal/inbox")
    item = page.locator(f'.inbox-item[data-run="{run_id}"]')
    expect(item.locator(".inbox-question")).not_to_be_empty()
    item.get_by_role("button", name="approve").click()
    expect(item).to_have_count(0)
    expect(page.locator("#inbox-count")).to_be_hidden()
    wait_until(lambda: Run.objects.get(pk=run_id).status == RunStatus.SUCCEEDED, timeout=20, what="the run")
    answered = Run.objects.get(pk=run_id).human_requests.get()
    assert answered.answer == "approve"
    assert answered.answered_by_id == alice.pk


def test_a_refused_answer_is_an_alert_and_an_answer_over_the_api_clears_the_question(
    browsing, stack, worker, alice
):
    browser = browsing()
    sign_in(browser, alice)
    page = browser.page()
    page.goto("/portal/inbox")
    run_id = start_demo_run(stack, alice)
    item = page.locator(f'.inbox-item[data-run="{run_id}"]')
    expect(item).to_be_visible(timeout=20_000)
    refusal = {"error": {"code": "already_answered", "message": "This question has already been answered."}}
    page.route(
        "**/api/human-loop/reply",
        lambda route: route.fulfill(status=409, content_type="application/json", body=json.dumps(refusal)),
    )
    item.get_by_role("button", name="approve").click()
    expect(item.get_by_role("alert")).to_have_text("This question has already been answered.")
    expect(item.get_by_role("button", name="approve")).to_be_enabled()
    page.unroute("**/api/human-loop/reply")

    token = Token.objects.get(user=alice).key
    answer = requests.post(
        stack.base + "/api/human-loop/reply",
        json={"request_id": item.get_attribute("data-request"), "answer": "reject"},
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    expect(item).to_have_count(0)
    expect(page.locator("#inbox-count")).to_be_hidden()
