"""The portal in a real browser: Debian's Chromium, headless, driven by Playwright, against the whole stack as
real processes (uvicorn serving the project, ``runworker``, the reference executor, PostgreSQL, Redis).

Every test gets a fresh browser context and leaves a screenshot in the artifacts directory
(``ARTIFACTS_DIR``, default ``var/test-artifacts``) under ``browser/<test name>.png``. A page that breaks the
Content-Security-Policy or logs a script error fails its test."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import expect

from agents.models import Action
from tests.executor_support import ROOT, free_port, start_executor, stop_process, wait_until
from tests.factories import AppFactory, ExecutorFactory, UserFactory, grant
from tests.stack import start_web, start_worker

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", ROOT / "var" / "test-artifacts")) / "browser"

# Assertions wait up to this long for the page: the suite shares two cores with the stack it drives.
expect.set_options(timeout=15_000)

if not Path(CHROMIUM).exists():  # pragma: no cover - .ci/run installs it
    pytest.exit(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)", returncode=3)


@dataclass
class Stack:
    base: str
    executor: Any
    log_dir: Path

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])


def gateway_env(port: int) -> dict[str, str]:
    """The web process and the workers offer plugins: http_fetch may reach this machine (the web process's
    own /healthz), and the workers hand executors this web process's tool gateway."""
    return {
        "PLUGINS_ENABLED": "http_fetch",
        "TOOL_GATEWAY_URL": f"http://127.0.0.1:{port}",
        "HTTP_FETCH_ALLOW_HOSTS": "127.0.0.1",
        "HTTP_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",
    }


# Package scope: the stack and the browser end with the last browser test, so the rest of the suite never
# runs beside Playwright's event loop or the DJANGO_ALLOW_ASYNC_UNSAFE it needs.
@pytest.fixture(scope="package")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("browser")
    executor = start_executor(log_dir)
    port = free_port()
    with django_db_blocker.unblock():
        # CONFIG_CACHE_S=0: each test makes its apps again under the same slugs; a cached one would be stale.
        web, base = start_web(
            log_dir, port=port, STATIC_FROM_APPS="true", CONFIG_CACHE_S="0", **gateway_env(port)
        )
    yield Stack(base=base, executor=executor, log_dir=log_dir)
    web.stop()
    stop_process(executor.process)


@pytest.fixture
def worker(stack, transactional_db):
    """A worker that is claiming runs when the test starts (a page's run must not wait for it to boot)."""
    process = start_worker(
        stack.log_dir, "--concurrency", "4", LOG_LEVEL="INFO", CONFIG_CACHE_S="0", **gateway_env(stack.port)
    )

    def started() -> bool:
        if process.process.poll() is not None:
            raise AssertionError(f"the worker exited:\n{process.log()}")
        return "worker_started" in process.log()

    wait_until(started, timeout=30, what="the worker")
    yield process
    if process.process.poll() is None:
        process.stop()


@pytest.fixture
def executor_row(stack, transactional_db):
    return ExecutorFactory(
        name="browser-executor",
        base_url=stack.executor.base_url,
        token=stack.executor.token,
        read_timeout_s=5.0,
        retries=3,
    )


@pytest.fixture
def app_on_executor(executor_row):
    def make(playbook: str = "demo", **fields):
        fields.setdefault("slug", f"{playbook}-app")
        fields.setdefault("name", fields["slug"].replace("-", " ").title())
        return AppFactory(playbook=playbook, executor=executor_row, **fields)

    return make


@pytest.fixture
def alice(transactional_db):
    """A person who may use the ``demo`` app (most conversation tests' cast)."""
    return UserFactory(username="alice")


@pytest.fixture
def demo(app_on_executor, alice):
    app = app_on_executor("demo", slug="demo", name="Demo agent")
    grant(alice, Action.USE, app)
    return app


@pytest.fixture(scope="package")
def browser(stack):
    """One Chromium for the browser tests. Playwright's sync API keeps an event loop in the test's thread
    while it lives: the tests' own ORM calls are synchronous and safe, but Django refuses them when it sees
    a running loop, so they are allowed for as long as the browser runs (after the test database exists)."""
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            yield chromium
            chromium.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@dataclass
class Browsing:
    """A browser context for one test: its pages' script errors and CSP violations are collected."""

    base: str
    context: Any
    problems: list[str] = field(default_factory=list)

    def page(self):
        page = self.context.new_page()
        page.on("console", lambda message: self._console(message))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        return page

    def _console(self, message) -> None:
        if message.type == "error" and not _expected_console_error(message.text):
            self.problems.append(f"console: {message.text}")


def _expected_console_error(text: str) -> bool:
    # A status the test provoked on purpose (a 404 page, a refused start) is logged by Chromium as a failed
    # resource; a stream cut by set_offline is an error event the page handles.
    return bool(re.search(r"status of (40\d|409|429)|ERR_INTERNET_DISCONNECTED|ERR_NETWORK_CHANGED", text))


@pytest.fixture
def browsing(browser, stack, transactional_db, request):
    def open_context(*, locale: str = "en-US", viewport: dict | None = None) -> Browsing:
        context = browser.new_context(
            base_url=stack.base, locale=locale, viewport=viewport or {"width": 1280, "height": 860}
        )
        context.set_default_timeout(15_000)
        made = Browsing(stack.base, context)
        opened.append(made)
        return made

    opened: list[Browsing] = []
    yield open_context
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    for n, made in enumerate(opened):
        pages = made.context.pages
        if pages:
            suffix = f"-{n}" if n else ""
            pages[-1].screenshot(path=str(ARTIFACTS / f"{name}{suffix}.png"), full_page=True)
        made.context.close()
    problems = [problem for made in opened for problem in made.problems]
    assert not problems, "the page reported problems:\n" + "\n".join(problems)


def sign_in(browsing: Browsing, user) -> None:
    """Put a signed-in session for ``user`` into the context (the sign-in form has its own test)."""
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    browsing.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": store.session_key, "url": browsing.base}]
    )


def conversation_ready(page) -> None:
    """Wait until the conversation page's scripts are attached (before them, Enter would not send)."""
    page.wait_for_selector("#composer[data-ready]")


def check_accessibility(page, *, context: str | None = None) -> None:
    """axe-core (axe-playwright-python bundles it): no serious or critical violation on the page."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=context)
    bad = [v for v in results.response["violations"] if v["impact"] in {"serious", "critical"}]
    assert not bad, "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}" for v in bad
    )
