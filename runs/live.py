"""Live delivery of stored run events to the streams open in this process.

Workers publish each stored batch once per channel (seq, type and data as JSON of each event) on one
Redis pub/sub channel; every web process holds one subscription, renders each event as SSE once per
channel and fans the batch out to the streams open on that channel (``runs.sse``). Without Redis
(standalone mode, or tests) ``publish`` hands the batch to this process's streams directly.

Storage, not pub/sub, is the source of truth: a stream reads ``RunEvent`` rows whenever live delivery
cannot prove it is complete (a gap in seqs, a full buffer, a lost subscription), so pub/sub may be late
or lossy and no client ever misses an event. Why not django-eventstream's listener (docs/architecture.md):
it subscribed lazily without waiting (events published before its SUBSCRIBE completed were lost to
streams already waiting), never resubscribed after a dropped connection, and its per-listener work capped
one process at ~1,000 streams on one channel on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from core.cache import Outage, redis_outage

logger = structlog.get_logger(__name__)

REDIS_CHANNEL = "controlplane:run-events"
SUBSCRIBE_WAIT_S = 5.0
BACKOFF_MAX_S = 5.0
MAX_PENDING = 500  # events held for one slow stream before it falls back to reading storage
SWEEP_S = 10.0  # a stream quiet for one to two sweeps gets a keep-alive
# A stream quiet for this many sweeps (drawn per stream, so streams do not all read at once) re-reads
# storage, in case a publish was lost while this process's subscription stayed up.
RECHECK_SWEEPS = (3, 6)
# The subscription pings Redis after this long without a message, and gives it up (and reconnects) when
# the ping gets no answer within as long again: a Redis that accepts but never answers is noticed.
PING_S = 10.0
subscription_outage = Outage("live_subscription_lost", skip_s=0.0)


@dataclass(frozen=True, slots=True)
class Block:
    """One event as it goes on the wire, shared by every stream of its channel."""

    seq: int
    text: bytes
    final: bool  # run.finished


# A stored event as it is published: (seq, type, data as JSON).
Published = tuple[int, str, str]


def make_block(channel: str, seq: int, event_type: str, data_json: str) -> Block:
    """Seq 0 is a hint with no place in a history (the inbox channel: ``runs.inbox``): it has no SSE id."""
    if not seq:
        return Block(0, f"event: {event_type}\ndata: {data_json}\n\n".encode(), False)
    text = f"event: {event_type}\nid: {channel}:{seq}\ndata: {data_json}\n\n".encode()
    return Block(seq, text, event_type == "run.finished")


@dataclass(eq=False, slots=True)
class Listener:
    channel: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    pending: list[Block] = field(default_factory=list)
    resync: bool = False  # live delivery may have missed something: read storage
    touched: bool = True  # something was delivered since the last sweep
    idle: bool = False  # nothing for a whole sweep: send a keep-alive
    quiet_sweeps: int = 0
    recheck_after: int = field(default_factory=lambda: random.randint(*RECHECK_SWEEPS))
    attached: bool = True  # a stream reads it (a listener registered ahead of its stream is not, yet)


class LiveHub:
    def __init__(self) -> None:
        self.listeners: dict[str, set[Listener]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._subscribed: asyncio.Event | None = None
        self._sweeper: asyncio.Task | None = None
        self.subscriptions = 0  # confirmations received: the first, then one per resubscription
        self._failed: asyncio.Event | None = None  # the last attempt to subscribe failed
        # Streams live on the event loop; a view thread may register a listener ahead of its stream
        # (``preregister``), so the registry is guarded.
        self._lock = threading.Lock()

    # --- streams (on the event loop) ---------------------------------------------------------------
    def add(self, channel: str, listener: Listener | None = None) -> Listener:
        """Register a stream's listener (or attach the one registered ahead for it)."""
        self.loop = loop = asyncio.get_running_loop()
        if self._sweeper is None or self._sweeper.done() or self._sweeper.get_loop() is not loop:
            self._sweeper = loop.create_task(self._sweep_forever(), name="live-sweeper")
        if listener is None:
            listener = Listener(channel)
        listener.attached = True
        with self._lock:
            self.listeners.setdefault(channel, set()).add(listener)
        return listener

    def preregister(self, channel: str) -> Listener | None:
        """From any thread, before the events exist (a run about to be created): a listener that will
        receive everything published on ``channel`` from now on, so its stream needs no storage read.
        None when live delivery cannot promise that yet (no subscription confirmed in this process)."""
        if self.loop is None or (redis_kwargs() and not self.subscribed()):
            return None
        listener = Listener(channel, attached=False)
        with self._lock:
            self.listeners.setdefault(channel, set()).add(listener)
        return listener

    async def _sweep_forever(self) -> None:
        """One timer for every stream instead of one per stream and wait: a stream that received
        nothing for a whole sweep is woken to send a keep-alive, and after a few such sweeps to re-check
        storage."""
        while True:
            await asyncio.sleep(SWEEP_S)
            self.sweep()

    def subscribed(self) -> bool:
        return self._subscribed is not None and self._subscribed.is_set()

    def sweep(self) -> None:
        # Without a subscription nothing arrives live: every quiet stream re-reads storage each sweep.
        degraded = bool(redis_kwargs()) and not self.subscribed()
        for listener in self._all():
            if listener.touched:
                listener.touched, listener.quiet_sweeps = False, 0
                continue
            if not listener.attached:
                self.remove(listener)  # registered ahead for a stream that never started
                continue
            listener.idle = True
            listener.quiet_sweeps += 1
            if degraded or listener.quiet_sweeps >= listener.recheck_after:
                listener.quiet_sweeps, listener.resync = 0, True
            listener.wake.set()

    def remove(self, listener: Listener) -> None:
        with self._lock:
            group = self.listeners.get(listener.channel)
            if group is not None:
                group.discard(listener)
                if not group:
                    del self.listeners[listener.channel]

    def deliver(self, channel: str, blocks: list[Block]) -> None:
        if blocks and blocks[-1].final:
            self._wake_todos_of(channel)
        with self._lock:
            group = list(self.listeners.get(channel, ()))
        for listener in group:
            if len(listener.pending) < MAX_PENDING:
                listener.pending.extend(blocks)
            else:
                listener.resync = True
            listener.touched = True
            listener.wake.set()

    def _wake_todos_of(self, channel: str) -> None:
        """The run finished: its todos streams carry no run.finished, so they re-read storage, find the
        run terminal and end."""
        from runs.streaming import RUN_PREFIX, TODOS_PREFIX  # runs.streaming imports this module

        with self._lock:
            group = list(self.listeners.get(TODOS_PREFIX + channel.removeprefix(RUN_PREFIX), ()))
        for listener in group:
            listener.resync = True
            listener.wake.set()

    def _all(self) -> list[Listener]:
        with self._lock:
            return [listener for group in self.listeners.values() for listener in group]

    def resync_all(self) -> None:
        for listener in self._all():
            listener.resync = True
            listener.wake.set()

    # --- the Redis subscription ----------------------------------------------------------------------
    async def wait_subscribed(self, timeout: float = SUBSCRIBE_WAIT_S) -> bool:
        """Start this process's subscription if needed and wait until it is active, so that nothing
        published after a stream's first storage read can be missed. Without Redis there is nothing to
        wait for. When Redis is down a stream still opens (it serves storage, and re-reads it when the
        subscription comes back)."""
        loop = asyncio.get_running_loop()
        if not redis_kwargs():
            self.loop = loop
            return True
        if self._task is None or self._task.done() or self.loop is not loop or self._subscribed is None:
            self.loop = loop
            self._subscribed, self._failed = asyncio.Event(), asyncio.Event()
            self._task = loop.create_task(
                self._subscribe_forever(self._subscribed, self._failed), name="live-redis"
            )
        if self._subscribed.is_set():
            return True
        assert self._failed is not None
        if self._failed.is_set():
            return False  # Redis is known to be down: serve storage now rather than wait for it
        waits = [loop.create_task(self._subscribed.wait()), loop.create_task(self._failed.wait())]
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiting in waits:
            waiting.cancel()
        return self._subscribed.is_set()

    async def _subscribe_forever(self, subscribed: asyncio.Event, failed: asyncio.Event) -> None:
        """Hold the subscription, reconnecting and resubscribing after a dropped connection: what was
        published meanwhile is lost to pub/sub. Every confirmation of a
        subscription (the first and each resubscription) therefore tells every open stream to re-read
        storage: the confirmation means the server delivers from here on, so the re-read closes the gap.
        Failures are logged at most once a minute (``subscription_outage``)."""
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        failures = 0
        while True:
            # No retry inside redis-py: this loop reconnects itself, and the first stream of a process
            # whose Redis is silent waits one socket timeout for the verdict, not several.
            client = Redis(**(redis_kwargs() or {}), retry=Retry(NoBackoff(), 0))
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(REDIS_CHANNEL)
                async for kind, data in self._messages(pubsub):
                    if kind == "message":
                        self._receive(data)
                    elif kind == "subscribe":
                        self.subscriptions += 1
                        if self.subscriptions > 1:
                            logger.info("live_subscription_restored", subscriptions=self.subscriptions)
                        failures = 0
                        failed.clear()
                        subscribed.set()
                        self.resync_all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                subscribed.clear()
                failed.set()
                failures += 1
                subscription_outage.failed(exc)
                await asyncio.sleep(min(BACKOFF_MAX_S, 0.1 * 2**failures) * (0.5 + random.random() / 2))
            finally:
                with contextlib.suppress(Exception):  # a connection already gone has nothing to close
                    await pubsub.aclose()
                    await client.aclose()

    @staticmethod
    async def _messages(pubsub) -> AsyncIterator[tuple[str, Any]]:
        """The subscription's messages as (type, data). Reads block for as long as Redis is quiet (the
        client's socket timeout is for commands), but a quiet Redis is pinged, and one that leaves the
        ping unanswered for ``PING_S`` is given up."""
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=PING_S)
            if message is not None:
                pinged = False
                yield message["type"], message["data"]
            elif pinged:
                raise RedisConnectionError(f"Redis left a ping unanswered for {PING_S} s")
            else:
                await pubsub.ping()
                pinged = True

    def _receive(self, raw: bytes | str) -> None:
        try:
            message = json.loads(raw)
            channel = message["c"]
            blocks = [make_block(channel, seq, event_type, data) for seq, event_type, data in message["e"]]
        except (ValueError, KeyError, TypeError):
            logger.warning("live_message_malformed", size=len(raw))
            return
        if channel in self.listeners or (blocks and blocks[-1].final):
            self.deliver(channel, blocks)


_hub = LiveHub()


def hub() -> LiveHub:
    return _hub


def redis_kwargs() -> dict | None:
    return getattr(settings, "EVENTSTREAM_REDIS", None)


# --- publishing (any thread, after the transaction that stored the events commits) --------------------
_publisher_lock = threading.Lock()
_publisher = None


def _redis_publisher():
    global _publisher
    with _publisher_lock:
        if _publisher is None:
            from redis import Redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # redis-py retries a failed command 10 times with backoff by default: up to ~5 s against a
            # closed port and 10 socket timeouts against a silent server, per publish. One retry on a
            # connection error only still replaces a pooled connection that Redis closed (a restart).
            retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
            _publisher = Redis(**(redis_kwargs() or {}), retry=retry)
        return _publisher


def publish(batches: Iterable[tuple[str, list[Published]]]) -> None:
    """Send each channel's batch to every web process (Redis) or to this process's streams."""
    batches = [(channel, events) for channel, events in batches if events]
    if not batches:
        return
    if redis_kwargs():
        _publish_to_redis(batches)
        return
    loop = _hub.loop
    if loop is None:
        return  # no stream has opened in this process: nobody to tell
    for channel, events in batches:
        try:
            loop.call_soon_threadsafe(_hub.deliver, channel, [make_block(channel, *e) for e in events])
        except RuntimeError:  # the loop closed (the process is stopping): its streams are gone
            return


def _publish_to_redis(batches: list[tuple[str, list[Published]]]) -> None:
    """The events are stored: streams find them on their next storage read (a later batch's gap, or their
    re-check after 30-60 s of quiet, every sweep in a process whose subscription is down), so a lost
    publish is late delivery, not loss. While Redis fails, publishing is skipped for a few seconds
    instead of each batch waiting out the socket timeout (``redis_outage``)."""
    if redis_outage.skipping():
        return
    pipe = _redis_publisher().pipeline(transaction=False)
    for channel, events in batches:
        pipe.publish(REDIS_CHANNEL, json.dumps({"c": channel, "e": events}, separators=(",", ":")))
    try:
        pipe.execute()
    except RedisError as exc:
        redis_outage.failed(exc)
