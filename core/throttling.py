"""Rate limits that cost one counter increment per request, whatever the rate.

DRF's throttles keep the time of every request in the window as one cached list, read and written whole
on each request: at the default 6,000/min a busy user's requests each unpickled, grew and re-pickled a list
of up to 6,000 floats, with two cache round trips. These count requests in fixed windows of the rate's
period instead: an ``INCR`` and an ``EXPIRE`` in one round trip with Redis. A fixed window lets a client
burst up to twice the rate across a window boundary, which is acceptable for the limits we set (they stop
runaway clients, not fair-share scheduling).
"""

from __future__ import annotations

from django.core.cache import cache as default_cache
from django.core.cache import caches
from rest_framework import throttling

from core.cache import SharedRedisCache


class WindowedRateThrottle(throttling.SimpleRateThrottle):
    num_requests: int
    duration: int
    now: float
    window_end: float

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_end = (window + 1) * self.duration
        return self._increment(f"{self.key}:{window}") <= self.num_requests

    def _increment(self, key: str) -> int:
        cache = self.cache
        if cache is default_cache:  # DRF's default is the proxy to the "default" backend
            cache = caches["default"]
        if isinstance(cache, SharedRedisCache):
            full_key = cache.make_and_validate_key(key)
            pipe = cache._cache.get_client(full_key, write=True).pipeline(transaction=False)
            pipe.incr(full_key)
            pipe.expire(full_key, self.duration + 1)
            count, _ = pipe.execute()
            return int(count)
        cache.add(key, 0, self.duration + 1)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, self.duration + 1)
            return 1

    def wait(self) -> float | None:
        return max(self.window_end - self.now, 0.0)


class UserRateThrottle(throttling.UserRateThrottle, WindowedRateThrottle):
    """Per user (per client address for anonymous requests), at the ``user`` rate."""


class ScopedRateThrottle(throttling.ScopedRateThrottle, WindowedRateThrottle):
    """Per user and the view's ``throttle_scope``, at that scope's rate."""
