"""The portal speaks the browser's language (English or Simplified Chinese) and switches on request."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import check_accessibility, conversation_ready, sign_in

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("accept", ["zh-CN", "zh"])
def test_a_chinese_browser_gets_the_store_and_the_conversation_in_chinese(
    browsing, worker, demo, alice, accept
):
    browser = browsing(locale=accept)
    sign_in(browser, alice)
    page = browser.page()
    page.goto("/portal/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_role("heading", name="应用商店")).to_be_visible()
    expect(page.locator("#store-status")).to_have_text("1 个应用")
    page.get_by_role("link", name="开始对话").click()
    conversation_ready(page)
    page.get_by_label("消息").fill("总结本季度")
    page.get_by_role("button", name="发送").click()
    turn = page.locator(".turn").first
    expect(turn.locator(".run-status .status")).to_have_text("等待你的回复")
    expect(turn.locator("details.tool summary")).to_contain_text("工具调用：word_count")
    expect(turn.locator("details.tool .tool-outcome")).to_have_text("已完成")
    expect(page.get_by_role("heading", name="待办清单")).to_be_visible()
    check_accessibility(page)
    turn.get_by_role("button", name="approve").click()
    expect(turn.locator(".run-status .status")).to_have_text("成功")


def test_a_refusal_from_the_api_is_shown_in_chinese(browsing, worker, demo, alice):
    browser = browsing(locale="zh-CN")
    sign_in(browser, alice)
    page = browser.page()
    page.goto("/portal/apps/demo/new")
    conversation_ready(page)
    page.get_by_label("消息").fill("一")
    page.get_by_role("button", name="发送").click()
    expect(page.locator(".turn .question-text")).to_be_visible()
    page.get_by_label("消息").fill("二")
    page.get_by_role("button", name="发送").click()
    expect(page.locator("#composer-error")).to_have_text("此会话中已有一个运行在进行。")


def test_the_language_switch_overrides_the_browser(browsing, demo, alice):
    browser = browsing(locale="en-US")
    sign_in(browser, alice)
    page = browser.page()
    page.goto("/portal/")
    expect(page.get_by_role("heading", name="App store")).to_be_visible()
    page.get_by_label("Language").select_option("zh-hans")
    expect(page.get_by_role("heading", name="应用商店")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/portal/$"))
    page.get_by_label("语言").select_option("en")
    expect(page.get_by_role("heading", name="App store")).to_be_visible()


def test_the_store_and_conversation_fit_a_phone(browsing, worker, demo, alice):
    browser = browsing(viewport={"width": 375, "height": 740})
    sign_in(browser, alice)
    page = browser.page()
    page.goto("/portal/")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375
    page.get_by_role("link", name="Start a conversation").click()
    conversation_ready(page)
    page.get_by_label("Message").fill("On a phone")
    page.keyboard.press("Enter")  # Enter sends
    expect(page.locator(".turn .question-text")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    check_accessibility(page)
