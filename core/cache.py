"""Django's Redis cache backend with one client, and so one connection pool, per process.

Django keeps cache backends per async context (``CacheHandler`` is not thread-critical), so under ASGI
every request builds a new ``RedisCacheClient`` with a new connection pool and opens a new TCP connection
(redis-py also re-reads its package metadata for each new connection). Measured on the run-start path: ~15%
of the web process's CPU went to that. redis-py's pools are thread-safe and reset themselves after a fork,
so sharing one client per configuration is safe.

``Outage`` lets the callers of a failing Redis fail open quickly and quietly (``core.throttling``,
``runs.live``).
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import structlog
from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

logger = structlog.get_logger(__name__)


class SharedRedisCache(RedisCache):
    # Set by RedisCache.__init__ (not in django-stubs).
    _servers: list[str]
    _options: dict[str, Any]
    _class: type

    _clients: ClassVar[dict[tuple, Any]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._class(self._servers, **self._options)
        return client


class Outage:
    """What a process remembers of a failing service (Redis): after a failure, callers skip the service for
    ``skip_s`` instead of each waiting out its timeout, and the failure is logged at most once per
    ``warn_every_s`` with the number of failures since the last warning, not once per request."""

    def __init__(self, event: str, *, skip_s: float = 5.0, warn_every_s: float = 60.0) -> None:
        self.event = event
        self.skip_s, self.warn_every_s = skip_s, warn_every_s
        self._until = 0.0
        self._next_warning = 0.0
        self.failures = 0  # since the last warning
        self._lock = threading.Lock()

    def skipping(self) -> bool:
        return time.monotonic() < self._until

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self._until = now + self.skip_s
            self.failures += 1
            if now < self._next_warning:
                return
            self._next_warning = now + self.warn_every_s
            failures, self.failures = self.failures, 0
        logger.warning(self.event, error=str(exc)[:300], failures=failures, skipping_s=self.skip_s)

    def reset(self) -> None:
        with self._lock:
            self._until = self._next_warning = 0.0
            self.failures = 0


# One per process for the Redis behind the cache and live delivery (they share REDIS_URL).
redis_outage = Outage("redis_unavailable")
