"""/api/docs/: Swagger UI served by the project — no CDN, no inline script or style — rendering offline."""

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from django.test import Client

from tests.factories import UserFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# The policy the project is getting (django-csp): the page must work under it.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'"
)
ABSOLUTE_URL = re.compile(r"""https?://[^\s"'<>)]+""")


class Page(HTMLParser):
    """What a page loads (script and link URLs) and what a CSP without 'unsafe-inline' would refuse."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.inline: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "style" in attrs or any(name.startswith("on") for name in attrs):
            self.inline.append(f"<{tag}> attributes")
        if tag == "style":
            self.inline.append("<style>")
        if tag in ("script", "link") and (attrs.get("src") or attrs.get("href")):
            self.assets.append(attrs.get("src") or attrs["href"])
        self._in_script = tag == "script" and not attrs.get("src")

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline.append("<script> body")

    def handle_endtag(self, tag):
        self._in_script = False


@pytest.fixture
def signed_in(transactional_db, live_server):
    """A requests session and the session cookie of a signed-in member, against the live server."""
    client = Client()
    client.force_login(UserFactory(username="reader"))
    cookie = client.cookies["sessionid"].value
    session = requests.Session()
    session.cookies.set("sessionid", cookie)
    return session, cookie


def test_docs_name_no_other_host_and_their_assets_come_from_the_project(signed_in, live_server):
    session, _ = signed_in
    page = session.get(f"{live_server.url}/api/docs/", allow_redirects=False, timeout=10)
    assert page.status_code == 200, page.text[:300]
    parsed = Page(page.text)
    assert parsed.inline == []
    assert len(parsed.assets) == 6  # the favicon, two style sheets, the two bundles and the start-up script
    for url in parsed.assets:
        assert url.startswith("/"), url
        answer = session.get(urljoin(page.url, url), timeout=10)
        assert answer.status_code == 200, url
        if "script" in urlsplit(url).query:
            assert answer.headers["Content-Type"].startswith("application/javascript")
            assert ABSOLUTE_URL.findall(answer.text) == []
    assert ABSOLUTE_URL.findall(page.text) == []


def test_swagger_ui_renders_the_operations_offline_under_the_csp(signed_in, live_server):
    from playwright.sync_api import sync_playwright

    _, cookie = signed_in
    host = urlsplit(live_server.url).hostname
    refused, problems = [], []

    def only_the_server(route):
        if urlsplit(route.request.url).hostname != host:
            refused.append(route.request.url)
            route.abort()
            return
        response = route.fetch()
        headers = {"content-security-policy": POLICY} | response.headers
        route.fulfill(response=response, headers=headers)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies([{"name": "sessionid", "value": cookie, "domain": host, "path": "/"}])
            context.route("**/*", only_the_server)
            page = context.new_page()
            page.on("console", lambda message: message.type == "error" and problems.append(message.text))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{live_server.url}/api/docs/")
            page.wait_for_selector(".opblock", timeout=20_000)
            operations = page.locator(".opblock").count()
            title = page.locator(".info .title").inner_text()
        finally:
            browser.close()
    assert operations >= 20
    assert "Agent control plane API" in title
    assert refused == []
    assert problems == []
