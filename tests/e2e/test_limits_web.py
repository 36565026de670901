"""Limits through a real uvicorn process: the address it reports for a client that sends its own
X-Forwarded-For, the per-user stream limit and a client disconnect, the todos stream ending when its run
finishes (published by another process through Redis), and a start while Redis is black-holed."""

from __future__ import annotations

import time

import pytest
import requests
from django.core.cache import cache
from django.db import transaction
from rest_framework.authtoken.models import Token

from runs.events import NewEvent, append_events
from tests.e2e.conftest import Client
from tests.executor_support import wait_until
from tests.factories import AppFactory, UserFactory
from tests.runs.test_redis_down import BlackHole
from tests.stack import SseReader, start_web

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def sign_in(base: str, forwarded: str) -> int:
    body = {"username": "nobody", "password": "wrong"}
    headers = {"X-Forwarded-For": forwarded}
    return requests.post(base + "/api/auth/token/", json=body, headers=headers, timeout=10).status_code


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: with its rewriting off, the client
        # is its connection, whatever it forwards.
        ({"FORWARDED_ALLOW_IPS": ""}, "one budget"),
        # A proxy on 127.0.0.1 trusted by the control plane: each forwarded client has its own budget.
        ({"FORWARDED_ALLOW_IPS": "", "TRUSTED_PROXIES": "127.0.0.1"}, "a budget each"),
    ],
)
def test_a_rotated_x_forwarded_for_gets_no_new_sign_in_budget_unless_from_a_trusted_proxy(
    tmp_path, environment, expected
):
    cache.clear()  # the web process counts in the same Redis database
    # A day's window: ten requests never straddle a window boundary (and get a fresh budget) here.
    web, base = start_web(tmp_path, API_THROTTLE_AUTH="10/day", **environment)
    try:
        statuses = [sign_in(base, f"203.0.113.{n}") for n in range(11)]
        if expected == "one budget":
            assert statuses == [400] * 10 + [429]
        else:
            assert statuses == [400] * 11
            assert [sign_in(base, "203.0.113.1") for _ in range(10)][-1] == 429
    finally:
        web.stop()


def test_a_stream_over_the_limit_is_429_until_a_client_disconnects_and_todos_streams_end(tmp_path):
    user = UserFactory(username="streams")
    client = Client("", Token.objects.create(user=user).key)
    AppFactory(slug="demo")
    web, client.base = start_web(tmp_path, STREAMS_MAX_PER_USER="1")
    try:
        run_id = client.post("/api/runs/", json={"app": "demo"}).json()["id"]
        first = client.get(f"/api/runs/{run_id}/events", stream=True)
        assert first.status_code == 200
        refused = client.get(f"/api/runs/{run_id}/todos/events")
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "5"
        first.close()  # the client goes away: its slot is freed
        todos = wait_until(
            lambda: (
                (r := client.get(f"/api/runs/{run_id}/todos/events", stream=True)).status_code == 200 and r
            ),
            timeout=10,
            what="the slot to be freed",
        )
        reader = SseReader(todos).start()
        with transaction.atomic():  # as a worker would: stored and published through Redis
            append_events(run_id=run_id, events=[NewEvent("run.finished", {"status": "succeeded"})])
        assert reader.done.wait(10), "the todos stream did not end with its run"
        assert reader.error is None
        again = client.get(f"/api/runs/{run_id}/todos/events", timeout=10)  # finished: sends and ends
        assert again.status_code == 200
        assert "stream-open" in again.text
    finally:
        web.stop()


def test_a_start_answers_within_seconds_while_redis_is_black_holed(tmp_path):
    client = Client("", Token.objects.create(user=UserFactory(username="hole")).key)
    AppFactory(slug="demo")
    hole = BlackHole()
    web, client.base = start_web(tmp_path, REDIS_URL=f"redis://127.0.0.1:{hole.port}/0")
    try:
        for _ in range(2):
            began = time.monotonic()
            assert client.post("/api/runs/", json={"app": "demo"}).status_code == 201
            assert time.monotonic() - began < 5
        began = time.monotonic()
        streamed = client.post("/api/runs/start", json={"app": "demo"}, stream=True)
        assert streamed.status_code == 200
        assert time.monotonic() - began < 5
        streamed.close()
    finally:
        web.stop()
        hole.close()
