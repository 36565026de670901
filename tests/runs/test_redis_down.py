"""Redis closed or black-holed (accepting connections, never answering): starts and sign-ins still answer,
within seconds, and streams serve storage. Real PostgreSQL; a real closed port and a real silent server."""

import asyncio
import socket
import threading
import time

import pytest
from structlog.testing import capture_logs

from core.cache import redis_outage
from runs import live
from runs.models import Run
from runs.sse import _stream
from runs.streaming import run_channel
from tests.executor_support import free_port
from tests.factories import AppFactory
from tests.runs.test_live import append, run_scenario, seqs

pytestmark = pytest.mark.django_db(transaction=True)


class BlackHole:
    """A TCP server that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.server.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.server.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def black_hole():
    hole = BlackHole()
    yield hole.port
    hole.close()


@pytest.fixture
def closed_port():
    return free_port()


def point_redis_at(settings, monkeypatch, port: int) -> None:
    """Every Redis client of this process (cache, publisher, subscriber) at ``port``, with the timeouts
    the settings give them."""
    cache = dict(settings.CACHES["default"])
    assert cache["BACKEND"] == "core.cache.SharedRedisCache", "needs REDIS_URL"
    cache["LOCATION"] = f"redis://127.0.0.1:{port}/0"
    settings.CACHES = {"default": cache}
    settings.EVENTSTREAM_REDIS = {**settings.EVENTSTREAM_REDIS, "port": port}
    monkeypatch.setattr(live, "_publisher", None)
    monkeypatch.setattr(live, "_hub", live.LiveHub())


@pytest.fixture(autouse=True)
def _no_outage_remembered():
    redis_outage.reset()
    yield
    redis_outage.reset()


def timed_start(client):
    began = time.monotonic()
    response = client.post("/api/runs/", {"app": "demo"}, format="json")
    return response, time.monotonic() - began


@pytest.mark.timeout(30)
@pytest.mark.parametrize("where", ["closed_port", "black_hole"])
def test_a_start_answers_within_seconds_and_later_ones_at_once_when_redis_fails(
    where, request, api_as, member, settings, monkeypatch
):
    point_redis_at(settings, monkeypatch, request.getfixturevalue(where))
    AppFactory(slug="demo")
    with capture_logs() as logs:
        first, first_s = timed_start(api_as(member))
        later = [timed_start(api_as(member)) for _ in range(3)]
    assert first.status_code == 201
    assert first_s < settings.REDIS_SOCKET_TIMEOUT_S + settings.REDIS_CONNECT_TIMEOUT_S + 1
    assert [response.status_code for response, _ in later] == [201] * 3
    assert max(seconds for _, seconds in later) < 1.0  # Redis is skipped while it is known to fail
    warnings = [log for log in logs if log["event"] == "redis_unavailable"]
    assert len(warnings) == 1
    assert Run.objects.filter(user=member).count() == 4


@pytest.mark.timeout(30)
def test_a_sign_in_answers_when_redis_is_black_holed(db, api, settings, monkeypatch, black_hole):
    point_redis_at(settings, monkeypatch, black_hole)
    response = api.post("/api/auth/token/", {"username": "nobody", "password": "x"}, format="json")
    assert response.status_code == 400  # wrong credentials, not a 500 and not a hang


def test_warnings_are_rate_limited_and_count_what_they_summarise():
    with capture_logs() as logs:
        for _ in range(5):
            redis_outage.failed(ConnectionError("refused"))
    assert [log["failures"] for log in logs] == [1]
    redis_outage._next_warning = 0.0  # a minute later
    with capture_logs() as logs:
        redis_outage.failed(ConnectionError("refused"))
    assert [log["failures"] for log in logs] == [5]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("where", ["closed_port", "black_hole"])
def test_a_stream_serves_storage_when_the_subscription_cannot_be_had(
    where, request, api_as, member, settings, monkeypatch
):
    point_redis_at(settings, monkeypatch, request.getfixturevalue(where))
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    AppFactory(slug="demo")
    run = Run.objects.get(pk=api_as(member).post("/api/runs/", {"app": "demo"}, format="json").json()["id"])
    append(run, "run.started", "run.finished", status="succeeded")
    hub = live.hub()

    async def scenario():
        began = time.monotonic()
        chunks = [c async for c in _stream(run_channel(run.pk), after=0, end_on_finish=True)]
        assert seqs(b"".join(chunks)) == [1, 2, 3]
        assert time.monotonic() - began < settings.REDIS_SOCKET_TIMEOUT_S + 1.5
        began = time.monotonic()
        assert not await hub.wait_subscribed()  # known to be down: no second wait
        assert time.monotonic() - began < 0.1
        assert hub.preregister(run_channel(run.pk)) is None  # a start stream reads storage too
        hub._task.cancel()

    run_scenario(scenario)


def test_a_quiet_stream_re_reads_storage_every_sweep_while_the_subscription_is_down(settings, closed_port):
    settings.EVENTSTREAM_REDIS = {"host": "127.0.0.1", "port": closed_port}
    hub = live.LiveHub()
    hub._subscribed = asyncio.Event()  # not set: down
    listener = live.Listener("run-x")
    hub.listeners["run-x"] = {listener}
    hub.sweep()  # delivered something since the last sweep
    hub.sweep()
    assert listener.idle
    assert listener.resync  # without a subscription: not after 3-6 quiet sweeps, at once


@pytest.mark.timeout(30)
def test_a_worker_s_publish_gives_up_within_one_timeout_then_skips_redis(settings, monkeypatch, black_hole):
    point_redis_at(settings, monkeypatch, black_hole)
    batch = [("run-x", [(1, "run.queued", "{}")])]
    began = time.monotonic()
    live.publish(batch)  # stored events stay stored: nothing is raised
    assert time.monotonic() - began < settings.REDIS_SOCKET_TIMEOUT_S + 1
    began = time.monotonic()
    live.publish(batch)
    assert time.monotonic() - began < 0.05


class FreezingProxy:
    """Forwards TCP to the real Redis until ``freeze``: from then on it keeps every connection open and
    forwards nothing, as a Redis that hangs (or a network that drops packets) does."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.frozen = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client = self.server.accept()[0]
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.frozen.is_set():
                    sink.sendall(data)
        except OSError:
            return

    def close(self) -> None:
        self.server.close()
        for sock in self.sockets:
            sock.close()


@pytest.mark.timeout(30)
def test_a_subscription_to_a_redis_that_goes_silent_is_given_up_and_a_quiet_one_is_kept(
    settings, monkeypatch
):
    real = settings.EVENTSTREAM_REDIS
    proxy = FreezingProxy(real["host"], real["port"])
    settings.EVENTSTREAM_REDIS = {**real, "port": proxy.port}
    monkeypatch.setattr(live, "PING_S", 0.2)
    hub = live.LiveHub()

    async def scenario():
        assert await hub.wait_subscribed()
        await asyncio.sleep(1.0)  # quiet, but answering pings
        assert hub.subscribed()
        assert hub.subscriptions == 1
        proxy.frozen.set()
        async with asyncio.timeout(3):  # two pings' time, not forever
            while hub.subscribed():
                await asyncio.sleep(0.05)
        hub._task.cancel()

    try:
        run_scenario(scenario)
    finally:
        proxy.close()


def test_readiness_fails_within_the_configured_timeouts_when_redis_is_black_holed(settings, black_hole):
    from observability.health import check_redis

    settings.REDIS_URL = f"redis://127.0.0.1:{black_hole}/0"
    settings.REDIS_CONNECT_TIMEOUT_S = settings.REDIS_SOCKET_TIMEOUT_S = 0.3
    started = time.monotonic()
    ok, reason = check_redis()
    elapsed = time.monotonic() - started
    assert ok is False, reason
    assert elapsed < 1.5, f"/readyz took {elapsed:.1f} s against a silent Redis (no retries, 0.3 s timeouts)"
