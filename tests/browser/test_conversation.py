"""A conversation in the browser, against real processes: the agent's answer streams in, todos tick, its
question is answered with an option button, the run finishes, and the next message continues the session."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from agents.models import Action
from runs.models import Run, RunEvent, RunStatus
from tests.browser.conftest import check_accessibility, conversation_ready, sign_in
from tests.executor_support import ROOT, wait_until
from tests.factories import UserFactory, grant

pytestmark = pytest.mark.slow


def open_demo(browsing, user):
    browser = browsing()
    sign_in(browser, user)
    page = browser.page()
    page.goto("/portal/")
    page.locator('[data-app="demo"]').get_by_role("link", name="Start a conversation").click()
    expect(page).to_have_url(re.compile(r"/portal/apps/demo/new$"))
    conversation_ready(page)
    return page


def send(page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def agent_text(run: Run, message_id: str) -> str:
    rows = RunEvent.objects.filter(run=run, type="message.delta").order_by("seq")
    return "".join(row.data["text"] for row in rows if row.data.get("message_id") == message_id)


def test_a_conversation_streams_asks_finishes_and_continues(browsing, worker, demo, alice):
    page = open_demo(browsing, alice)
    check_accessibility(page)
    send(page, "Summarise the quarter")
    expect(page).to_have_url(re.compile(r"/portal/sessions/[0-9a-f-]{36}$"))
    turn = page.locator(".turn").first
    expect(turn.locator(".bubble.mine")).to_have_text("Summarise the quarter")
    expect(turn.locator('[data-message="m1"]')).to_have_text("I will work on: Summarise the quarter")
    expect(turn.locator("details.tool summary")).to_contain_text("Tool call: word_count")
    expect(turn.locator("details.tool .tool-outcome")).to_have_text("done")
    expect(turn.locator("details.tool .tool-result")).to_contain_text('"words": 3')
    expect(page.locator('#todos li[data-todo="t3"]')).to_have_attribute("data-status", "in_progress")
    expect(page.locator('#todos li[data-todo="t1"]')).to_have_attribute("data-status", "done")
    question = turn.locator(".question")
    asked = "The tool has answered. Shall I write the answer?"
    expect(question.locator(".question-text")).to_have_text(asked)
    expect(turn.locator(".run-status .status")).to_have_text("waiting for you")
    check_accessibility(page)
    question.get_by_role("button", name="approve").click()
    expect(question).to_contain_text("Answered: approve")
    expect(turn.locator('[data-message="m2"]')).to_contain_text("You approved, so here it is.")
    expect(turn.locator(".run-status .status")).to_have_text("succeeded")
    expect(page.locator("#todos li[data-status=done]")).to_have_count(4)

    send(page, "And the next one")
    second = page.locator(".turn").nth(1)
    expect(second.locator('[data-message="m1"]')).to_have_text("I will work on: And the next one")
    second.locator(".question").get_by_role("button", name="reject").click()
    expect(second.locator(".run-status .status")).to_have_text("succeeded")
    runs = list(Run.objects.filter(user=alice).order_by("created_at"))
    assert len(runs) == 2
    assert runs[0].session_id == runs[1].session_id

    page.reload()  # a finished conversation shows its whole history
    expect(page.locator(".turn")).to_have_count(2)
    expect(page.locator('.turn >> nth=0 >> [data-message="m2"]')).to_have_text(agent_text(runs[0], "m2"))
    expect(page.locator(".turn >> nth=0 >> .question")).to_contain_text("Answered: approve")
    expect(page.locator(".question form")).to_have_count(0)


def test_a_dropped_connection_catches_up_with_no_duplicate_and_no_gap(browsing, worker, demo, alice, stack):
    page = open_demo(browsing, alice)
    send(page, "Count my words please")
    turn = page.locator(".turn").first
    expect(turn.locator(".question-text")).to_be_visible()
    run = Run.objects.get(user=alice)

    page.context.set_offline(True)
    expect(page.locator("#connection")).to_have_text("Connection lost. Reconnecting…")
    token = Token.objects.create(user=alice).key
    answered = requests.post(
        f"{stack.base}/api/human-loop/reply",
        json={"request_id": f"{run.pk}:q1", "run_id": str(run.pk), "answer": "approve"},
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    assert answered.status_code == 200, answered.text
    wait_until(lambda: Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED, timeout=20, what="the run")
    expect(turn.locator('[data-message="m2"]')).to_have_count(0)  # offline: nothing arrived

    page.context.set_offline(False)
    expect(turn.locator(".run-status .status")).to_have_text("succeeded", timeout=15_000)
    expect(turn.locator('[data-message="m1"]')).to_have_text(agent_text(run, "m1"))
    expect(turn.locator('[data-message="m2"]')).to_have_text(agent_text(run, "m2"))
    expect(turn.locator(".question")).to_contain_text("Answered: approve")
    expect(turn.locator(".question")).to_have_count(1)
    expect(turn.locator("details.tool")).to_have_count(1)


def test_a_message_sent_while_a_run_is_active_is_refused_with_the_reason_then_queued(
    browsing, worker, demo, alice
):
    page = open_demo(browsing, alice)
    send(page, "First")
    first = page.locator(".turn").first
    expect(first.locator(".question-text")).to_be_visible()
    send(page, "Second")
    expect(page.locator("#composer-error")).to_have_text("A run is already active in this session.")
    page.get_by_role("button", name="Queue it after the current run").click()
    second = page.locator(".turn").nth(1)
    expect(second.locator(".bubble.mine")).to_have_text("Second")
    expect(second.locator(".run-status .status")).to_have_text("queued")
    first.locator(".question").get_by_role("button", name="approve").click()
    expect(first.locator(".run-status .status")).to_have_text("succeeded")
    expect(second.locator('[data-message="m1"]')).to_have_text("I will work on: Second")


def test_cancel_stops_the_run(browsing, worker, demo, alice):
    page = open_demo(browsing, alice)
    send(page, "Something long")
    turn = page.locator(".turn").first
    expect(turn.locator(".question-text")).to_be_visible()
    turn.get_by_role("button", name="Cancel run").click()
    expect(turn.locator(".run-status .status")).to_have_text("cancelled")
    expect(turn.locator(".question form")).to_have_count(0)


def test_another_persons_run_and_conversation_are_not_found(browsing, worker, demo, alice):
    page = open_demo(browsing, alice)
    send(page, "Mine only")
    expect(page.locator(".turn .question-text")).to_be_visible()
    run = Run.objects.get(user=alice)
    bob = UserFactory(username="bob")
    grant(bob, Action.USE, demo)
    other = browsing()
    sign_in(other, bob)
    snoop = other.page()
    for path in (f"/portal/sessions/{run.session_id}", f"/portal/runs/{run.pk}"):
        response = snoop.goto(path)
        assert response.status == 404
        expect(snoop.get_by_role("heading", name="Not found")).to_be_visible()
    assert "Mine only" not in snoop.content()


def test_a_reader_with_view_all_sees_the_conversation_read_only(browsing, worker, demo, alice):
    page = open_demo(browsing, alice)
    send(page, "Watch me")
    expect(page.locator(".turn .question-text")).to_be_visible()
    run = Run.objects.get(user=alice)
    auditor = UserFactory(username="auditor")
    grant(auditor, Action.RUN_VIEW_ALL, demo)
    other = browsing()
    sign_in(other, auditor)
    reader = other.page()
    reader.goto(f"/portal/runs/{run.pk}")
    expect(reader).to_have_url(re.compile(rf"/portal/sessions/{run.session_id}#run-{run.pk}$"))
    expect(reader.locator(".turn .question-text")).to_be_visible()
    expect(reader.get_by_text("alice's conversation (read only)")).to_be_visible()
    expect(reader.locator(".question form")).to_have_count(0)
    expect(reader.get_by_role("button", name="Cancel run")).to_have_count(0)
    expect(reader.get_by_label("Message")).to_have_count(0)


def test_tool_calls_through_the_gateway_show_their_outcome_and_audit(
    browsing, worker, app_on_executor, alice, stack
):
    app = app_on_executor("tools", slug="tools", name="Tool user", plugins=["http_fetch"])
    grant(alice, Action.USE, app)
    browser = browsing()
    sign_in(browser, alice)
    page = browser.page()
    page.goto("/portal/apps/tools/new")
    conversation_ready(page)
    send(page, f"Fetch {stack.base}/healthz and http://127.0.0.2/secret")
    turn = page.locator(".turn").first
    expect(turn.locator(".run-status .status")).to_have_text("succeeded", timeout=20_000)
    fetched, refused = turn.locator("details.tool").nth(0), turn.locator("details.tool").nth(1)
    expect(fetched.locator("summary")).to_contain_text("Tool call: http_fetch")
    expect(fetched.locator(".tool-outcome")).to_have_text("done")
    expect(refused.locator(".tool-outcome")).to_have_text("failed: host_not_allowed")
    expect(refused).to_have_attribute("data-ok", "false")
    # What the gateway recorded, from GET /api/runs/{id}/tool-calls, folded under each call.
    expect(fetched.locator(".tool-audit")).to_contain_text("Gateway: ok, HTTP 200")
    expect(refused.locator(".tool-audit")).to_contain_text("Gateway: failed, HTTP 403")
    expect(fetched.locator(".tool-audit a")).to_have_count(0)  # the span link is for operators
    fetched.locator("summary").click()
    expect(fetched.locator(".tool-result")).to_contain_text('"status": 200')
    check_accessibility(page)
    page.screenshot(path=str(ROOT / "docs" / "screenshots" / "tool-calls.png"), full_page=False)
