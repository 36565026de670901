"""Rate limits that cost one counter increment per request, whatever the rate, keyed on the real client.

DRF's throttles keep the time of every request in the window as one cached list, read and written whole
on each request: at the default 6,000/min a busy user's requests each unpickled, grew and re-pickled a list
of up to 6,000 floats, with two cache round trips. These count requests in fixed windows of the rate's
period instead: an ``INCR`` and an ``EXPIRE`` in one round trip with Redis. A fixed window lets a client
burst up to twice the rate across a window boundary, which is acceptable for the limits we set (they stop
runaway clients, not fair-share scheduling).

An anonymous client is its address (``client_address``): DRF's own ``get_ident`` believes any
``X-Forwarded-For`` when ``NUM_PROXIES`` is unset, so a client that rotated the header got a fresh budget
with every request. A throttle whose cache (Redis) fails lets the request through: a limit that turns an
outage into errors would do more harm than the clients it stops (``core.cache.redis_outage``).
"""

from __future__ import annotations

import functools
import ipaddress
import math

from django.conf import settings
from django.core.cache import cache as default_cache
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from redis.exceptions import RedisError
from rest_framework import throttling

from core.cache import SharedRedisCache, redis_outage

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: HttpRequest) -> str:
    """The address of the machine that sent the request.

    ``REMOTE_ADDR`` unless the connection comes from one of ``TRUSTED_PROXIES``; then ``X-Forwarded-For``
    is read from the right (each proxy appends the address it saw), skipping trusted proxies, and the
    first address that is not one is the client. Entries to its left were written by the client itself.
    """
    remote = request.META.get("REMOTE_ADDR") or ""
    networks = _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ())))
    if not networks or not _trusted(remote, networks):
        return remote
    client = remote
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        hop = hop.strip()
        if not _trusted(hop, networks):
            return hop if _is_address(hop) else client  # garbage is never a trusted proxy's record
        client = hop
    return client


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class WindowedRateThrottle(throttling.SimpleRateThrottle):
    num_requests: int
    duration: int
    now: float
    window_end: float

    def get_ident(self, request) -> str:
        return client_address(request)

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_end = (window + 1) * self.duration
        return self._count(f"{self.key}:{window}") <= self.num_requests

    def _count(self, key: str) -> int:
        cache = self.cache
        if cache is default_cache:  # DRF's default is the proxy to the "default" backend
            cache = caches["default"]
        return count_in_window(key, self.duration, cache=cache)

    def wait(self) -> float | None:
        return max(self.window_end - self.now, 0.0)


def count_in_window(key: str, duration: int, *, cache=None) -> int:
    """This request's number in the fixed window ``key`` names (the caller puts the window in the key);
    0 — let it through — while the cache is failing."""
    return count_in_windows([key], duration, cache=cache)[0]


def count_in_windows(keys: list[str], duration: int, *, cache=None) -> list[int]:
    """``count_in_window`` for several counters at once: one round trip with Redis for all of them."""
    cache = cache if cache is not None else caches["default"]
    if redis_outage.skipping():
        return [0] * len(keys)
    try:
        if isinstance(cache, SharedRedisCache):
            full_keys = [cache.make_and_validate_key(key) for key in keys]
            pipe = cache._cache.get_client(full_keys[0], write=True).pipeline(transaction=False)
            for full_key in full_keys:
                pipe.incr(full_key)
                pipe.expire(full_key, duration + 1)
            replies = pipe.execute()
            return [int(count) for count in replies[::2]]
        return [_count_locally(cache, key, duration) for key in keys]
    except RedisError as exc:
        redis_outage.failed(exc)
        return [0] * len(keys)


def _count_locally(cache, key: str, duration: int) -> int:
    cache.add(key, 0, duration + 1)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, duration + 1)
        return 1


class UserRateThrottle(throttling.UserRateThrottle, WindowedRateThrottle):
    """Per user (per client address for anonymous requests), at the ``user`` rate."""


class ScopedRateThrottle(throttling.ScopedRateThrottle, WindowedRateThrottle):
    """Per user and the view's ``throttle_scope``, at that scope's rate."""


class SignInRateThrottle(ScopedRateThrottle):
    """Sign-in attempts per client address, at the ``auth`` rate, whoever is signed in already. The key is
    the one ``ScopedRateThrottle`` gives an anonymous request in the ``auth`` scope (the token endpoint's),
    so the API's token endpoint and the admin's sign-in page spend one budget."""

    throttle_scope = "auth"  # the scope DRF's ScopedRateThrottle reads from the view

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class SignInThrottleMiddleware:
    """Throttles POSTs to the sign-in views named in ``SIGN_IN_VIEWS`` (the admin's ``admin:login``); a
    refused attempt gets a plain 429 page with ``Retry-After``."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        match = request.resolver_match
        if request.method != "POST" or match is None or match.view_name not in settings.SIGN_IN_VIEWS:
            return None
        throttle = SignInRateThrottle()
        if throttle.allow_request(request, throttle):
            return None
        wait = math.ceil(throttle.wait() or 1)
        page = (
            "<!doctype html><title>Too many sign-in attempts</title><h1>Too many sign-in attempts</h1>"
            f"<p>Too many sign-in attempts from your address. Try again in {wait} seconds.</p>"
        )
        response = HttpResponse(page, status=429)
        response["Retry-After"] = str(wait)
        return response
