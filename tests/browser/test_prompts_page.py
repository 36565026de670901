"""An app's prompt history in the browser: versions, a version's diff, rollback with a reason, saving a
version; the page exists only for those who hold prompt.edit on the app."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from agents.models import Action
from agents.prompts import prompt_version_create
from tests.browser.conftest import check_accessibility, sign_in
from tests.factories import AppFactory, UserFactory, grant

pytestmark = pytest.mark.slow


@pytest.fixture
def writer(transactional_db):
    app = AppFactory(slug="writer", name="Writer")
    author = UserFactory(username="author")
    prompt_version_create(app=app, text="You write.\nBe brief.\n", message="first", author=author)
    prompt_version_create(
        app=app, text="You write.\nBe thorough.\n", message="more detail", author=author, activate=True
    )
    return app


def test_prompt_rollback_from_the_page_changes_the_active_version_shown_in_the_app_store(browsing, writer):
    editor = UserFactory(username="editor")
    grant(editor, Action.PROMPT_EDIT, writer)
    browser = browsing()
    sign_in(browser, editor)
    page = browser.page()
    page.goto("/portal/")
    card = page.locator('[data-app="writer"]')
    expect(card.locator("[data-prompt-version]")).to_have_attribute("data-prompt-version", "2")
    card.get_by_role("link", name="Prompt history").click()
    expect(page).to_have_url(f"{browser.base}/portal/apps/writer/prompts")
    rows = page.locator("#versions-rows tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("active")
    expect(rows.first).to_contain_text("more detail")
    expect(page.locator("#detail-heading")).to_have_text("Version 2")
    page.get_by_role("button", name="v1", exact=True).click()
    expect(page.locator("#detail-heading")).to_have_text("Version 1")
    expect(page.locator("#detail-text")).to_have_text("You write.\nBe brief.\n")
    expect(page.locator("#detail-diff .del")).to_have_text("-Be thorough.")
    expect(page.locator("#detail-diff .add")).to_have_text("+Be brief.")
    page.get_by_role("button", name="Activate").click()  # no reason yet: refused on the page
    expect(page.locator("#activate-error")).to_contain_text("reason")
    page.get_by_label("Reason (required)").fill("v2 made answers too long")
    page.get_by_role("button", name="Activate").click()
    expect(page.locator("#prompts-status")).to_have_text("Version 1 is now active.")
    expect(rows.last).to_contain_text("active")
    expect(page.locator("#activations-rows tr").first).to_contain_text("v2 made answers too long")
    expect(page.locator("#activations-rows tr").first).to_contain_text("editor")
    check_accessibility(page)
    page.goto("/portal/")
    expect(page.locator('[data-app="writer"] [data-prompt-version]')).to_have_attribute(
        "data-prompt-version", "1"
    )
    expect(page.locator('[data-app="writer"]')).to_contain_text("prompt v1")


def test_a_new_version_is_saved_from_the_page_and_diffed_against_any_other(browsing, writer):
    editor = UserFactory(username="editor")
    grant(editor, Action.PROMPT_EDIT, writer)
    browser = browsing()
    sign_in(browser, editor)
    page = browser.page()
    page.goto("/portal/apps/writer/prompts")
    expect(page.locator("#versions-rows tr")).to_have_count(2)
    page.get_by_label("Prompt text", exact=True).fill("You write.\nBe funny.\n")
    page.get_by_label("Note (what changed)").fill("humour")
    page.get_by_role("button", name="Save version").click()
    expect(page.locator("#prompts-status")).to_have_text("Version 3 saved.")
    expect(page.locator("#versions-rows tr")).to_have_count(3)
    expect(page.locator("#detail-heading")).to_have_text("Version 3")
    expect(page.locator("#detail-diff .add")).to_have_text("+Be funny.")
    page.get_by_label("Compare with").select_option("1")
    expect(page.locator("#diff-heading")).to_have_text("Changes from v1 to v3")
    expect(page.locator("#detail-diff .del")).to_have_text("-Be brief.")


def test_a_person_without_prompt_edit_gets_the_404_page_and_no_link(browsing, writer):
    reader = UserFactory(username="reader")
    grant(reader, Action.USE, writer)
    browser = browsing()
    sign_in(browser, reader)
    page = browser.page()
    page.goto("/portal/")
    expect(page.locator('[data-app="writer"]')).to_be_visible()
    expect(page.locator('[data-app="writer"]').get_by_role("link", name="Prompt history")).to_have_count(0)
    response = page.goto("/portal/apps/writer/prompts")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert page.goto("/portal/apps/no-such-app/prompts").status == 404
    check_accessibility(page)
