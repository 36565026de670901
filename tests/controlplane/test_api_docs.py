"""/api/docs/: Swagger UI served by the project — no CDN, no inline script or style — rendering offline."""

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from django.test import Client

from tests.factories import UserFactory

ABSOLUTE_URL = re.compile(r"""https?://[^\s"'<>)]+""")


class Page(HTMLParser):
    """What a page loads (script and link URLs) and what a CSP without 'unsafe-inline' would refuse (the page
    in a browser under the project's CSP: tests/browser/test_api_docs.py)."""

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
