"""Django's Redis cache backend with one client, and so one connection pool, per process.

Django keeps cache backends per async context (``CacheHandler`` is not thread-critical), so under ASGI
every request builds a new ``RedisCacheClient`` with a new connection pool and opens a new TCP connection
(redis-py also re-reads its package metadata for each new connection). Measured on the run-start path: ~15%
of the web process's CPU went to that. redis-py's pools are thread-safe and reset themselves after a fork,
so sharing one client per configuration is safe.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property


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
