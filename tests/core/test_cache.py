"""The Redis cache backend keeps one client per process, whatever thread or async context asks."""

import threading

import pytest
from django.core.cache import caches

from core.cache import SharedRedisCache


def backend_client_in_new_thread():
    found = []

    def target():
        caches["default"].set("shared-cache-probe", 1)  # a new thread gets its own backend object
        found.append((caches["default"], caches["default"]._cache))

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return found[0]


def test_backends_in_different_threads_share_one_client_and_its_connections():
    if not isinstance(caches["default"], SharedRedisCache):
        pytest.skip("needs the Redis cache (REDIS_URL)")
    first_backend, first_client = backend_client_in_new_thread()
    second_backend, second_client = backend_client_in_new_thread()
    assert first_backend is not second_backend  # Django made a backend per thread...
    assert first_client is second_client  # ...and they share one client, so one connection pool
    assert first_client is caches["default"]._cache
