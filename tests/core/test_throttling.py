"""Fixed-window throttles (controlplane/throttling.py) on the real Redis cache and on the in-memory one."""

import pytest
from django.core.cache import cache

from core.cache import SharedRedisCache
from core.throttling import UserRateThrottle
from tests.factories import AppFactory

# Starts are what these tests measure, not access: every user may start runs of every app.
pytestmark = pytest.mark.usefixtures("every_user_may_use_every_app")


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def three_per_minute(monkeypatch, throttle_clock):
    monkeypatch.setattr(UserRateThrottle, "rate", "3/min", raising=False)


def start(client):
    return client.post("/api/runs/", {"app": "demo"}, format="json")


def test_starts_beyond_the_rate_are_429_with_the_wait_and_other_users_are_not_affected(
    api_as, member, outsider, three_per_minute
):
    AppFactory(slug="demo")
    for _ in range(3):
        assert start(api_as(member)).status_code == 201
    refused = start(api_as(member))
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 60
    assert start(api_as(outsider)).status_code == 201


def test_the_counter_is_one_expiring_key_per_window(api_as, member, three_per_minute, monkeypatch):
    from django.core.cache import caches

    backend = caches["default"]
    if not isinstance(backend, SharedRedisCache):
        pytest.skip("needs the Redis cache")
    AppFactory(slug="demo")
    calls = []
    monkeypatch.setattr(backend, "incr", lambda *a, **k: calls.append(a))  # the generic two-trip path
    start(api_as(member))
    start(api_as(member))
    assert calls == []  # one pipelined round trip instead
    client = backend._cache.get_client(write=False)
    keys = list(client.keys("*throttle_user_*"))
    assert len(keys) == 1
    assert int(client.get(keys[0])) == 2
    assert 0 < client.ttl(keys[0]) <= 61


def test_the_in_memory_cache_counts_the_same_way(api_as, member, three_per_minute, monkeypatch):
    from django.core.cache.backends.locmem import LocMemCache

    local = LocMemCache("throttle-test", {})
    monkeypatch.setattr(UserRateThrottle, "cache", local)
    AppFactory(slug="demo")
    assert [start(api_as(member)).status_code for _ in range(4)] == [201, 201, 201, 429]
