"""The whole stack as real processes: uvicorn serving the API, `runworker`, the reference executor, and
PostgreSQL and Redis. The web and executor processes live for the session; each test gets its own worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import requests
from rest_framework.authtoken.models import Token

from tests.executor_support import ExecutorProcess, start_executor, stop_process
from tests.factories import AppFactory, ExecutorFactory, UserFactory
from tests.stack import Process, SseReader, start_web, start_worker


@dataclass
class Stack:
    base: str
    web: Process
    executor: ExecutorProcess
    log_dir: Any


@pytest.fixture(scope="session")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("e2e")
    executor = start_executor(log_dir)
    with django_db_blocker.unblock():
        # CONFIG_CACHE_S=0: tests make their apps again under the same slugs (demo); a cached one would be
        # stale for the next test, which only a slow test before it used to hide.
        web, base = start_web(log_dir, CONFIG_CACHE_S="0")
    yield Stack(base=base, web=web, executor=executor, log_dir=log_dir)
    web.stop()
    stop_process(executor.process)


@pytest.fixture
def worker(stack, transactional_db):
    process = start_worker(stack.log_dir, "--concurrency", "4", CONFIG_CACHE_S="0")
    yield process
    if process.process.poll() is None:
        process.stop()


@dataclass
class Client:
    base: str
    token: str

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(
            method, self.base + path, headers=headers, timeout=kwargs.pop("timeout", 15), **kwargs
        )

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def stream(self, path: str, *, method: str = "GET", headers: dict | None = None, **kwargs) -> SseReader:
        response = self.request(
            method,
            path,
            headers={"Accept": "text/event-stream", **(headers or {})},
            stream=True,
            timeout=(5, 60),
            **kwargs,
        )
        assert response.status_code == 200, response.text
        return SseReader(response).start()


@pytest.fixture
def app_on_executor(stack, transactional_db):
    executor = ExecutorFactory(
        name="test-executor",
        base_url=stack.executor.base_url,
        token=stack.executor.token,
        read_timeout_s=5.0,
        retries=3,
    )

    def make(playbook: str = "demo", slug: str | None = None):
        return AppFactory(slug=slug or f"{playbook}-app", playbook=playbook, executor=executor)

    return make


@pytest.fixture
def client_for(stack, transactional_db):
    def make(username: str) -> Client:
        user = UserFactory(username=username)
        return Client(stack.base, Token.objects.create(user=user).key)

    return make


@pytest.fixture(autouse=True)
def _runs_not_access(every_user_may_use_every_app):
    """These tests are about runs, not access: every user they make may start runs of every app."""
