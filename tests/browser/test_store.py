"""The app store in the browser: the cards a person may see, starting only where they may use."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from agents.models import Action
from tests.browser.conftest import check_accessibility, sign_in
from tests.factories import PASSWORD, UserFactory, grant

pytestmark = pytest.mark.slow


@pytest.fixture
def apps(app_on_executor):
    return {
        "demo": app_on_executor("demo", slug="demo", name="Demo agent", category="research"),
        "instant": app_on_executor("instant", slug="instant", name="Instant", category="tools"),
        "secret": app_on_executor("instant", slug="secret-ops", name="Secret ops"),
    }


def test_a_person_signs_in_with_the_form_and_lands_in_the_store(browsing, apps):
    UserFactory(username="alice")
    browser = browsing()
    page = browser.page()
    page.goto("/")
    expect(page).to_have_url(f"{browser.base}/accounts/login/?next=/portal/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{browser.base}/portal/")
    expect(page.locator(".who .username")).to_have_text("alice")
    check_accessibility(page)


def test_a_wrong_password_is_refused_on_the_form(browsing):
    UserFactory(username="alice")
    page = browsing().page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("didn't match")


def test_the_store_shows_usable_see_only_and_hides_the_rest(browsing, apps):
    user = UserFactory(username="bob")
    grant(user, Action.USE, apps["demo"])
    grant(user, Action.SEE, apps["instant"])
    browser = browsing()
    sign_in(browser, user)
    page = browser.page()
    page.goto("/portal/")
    demo, instant = page.locator('[data-app="demo"]'), page.locator('[data-app="instant"]')
    expect(demo.get_by_role("link", name="Start a conversation")).to_have_attribute(
        "href", "/portal/apps/demo/new"
    )
    expect(instant.get_by_role("button", name="Start a conversation")).to_be_disabled()
    expect(instant).to_contain_text("not start it")
    expect(page.locator('[data-app="secret-ops"]')).to_have_count(0)
    expect(page.locator("#store-status")).to_have_text("2 apps")
    check_accessibility(page)


def test_search_and_category_narrow_the_cards(browsing, apps):
    user = UserFactory(username="carol")
    grant(user, Action.USE)
    browser = browsing()
    sign_in(browser, user)
    page = browser.page()
    page.goto("/portal/")
    expect(page.locator("[data-app]")).to_have_count(3)
    page.get_by_label("Search").fill("instant")
    expect(page.locator("[data-app]")).to_have_count(1)
    page.get_by_label("Search").fill("")
    page.get_by_label("Category").select_option("research")
    expect(page.locator("[data-app]")).to_have_count(1)
    expect(page.locator('[data-app="demo"]')).to_be_visible()


def test_an_outsider_sees_an_empty_store_and_no_start_page(browsing, apps):
    user = UserFactory(username="outsider")
    browser = browsing()
    sign_in(browser, user)
    page = browser.page()
    page.goto("/portal/")
    expect(page.locator("#store-status")).to_have_text("No app matches.")
    response = page.goto("/portal/apps/demo/new")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
