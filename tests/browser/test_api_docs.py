"""Swagger UI at /api/docs/ renders in Chromium with nothing fetched from another host, under the project's
Content-Security-Policy (no inline script or style)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import sign_in
from tests.factories import UserFactory

pytestmark = pytest.mark.slow


def test_swagger_ui_renders_the_operations_offline_under_the_csp(browsing):
    browser = browsing()
    sign_in(browser, UserFactory(username="reader"))
    host = urlsplit(browser.base).hostname
    refused = []

    def only_the_server(route):
        if urlsplit(route.request.url).hostname != host:
            refused.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    browser.context.route("**/*", only_the_server)
    page = browser.page()
    response = page.goto("/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock", timeout=20_000)
    assert page.locator(".opblock").count() >= 20
    assert "Agent control plane API" in page.locator(".info .title").inner_text()
    assert refused == []
