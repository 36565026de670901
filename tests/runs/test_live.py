"""A run's SSE stream (runs.sse) over the live hub (runs.live): history, live events, and the storage
re-reads that make a lost, late, repeated or reordered publish harmless. Real PostgreSQL and Redis."""

import asyncio
import contextlib
import json
import re
import threading
import uuid

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.db import connection, transaction

from runs import live
from runs.events import NewEvent, append_events
from runs.models import Run
from runs.sse import KEEP_ALIVE, _stream
from runs.streaming import encode, run_channel, todos_channel
from tests.factories import AppFactory

pytestmark = pytest.mark.django_db(transaction=True)
ID = re.compile(rb"^id: [^\n]*:(\d+)$", re.MULTILINE)
EVENT = re.compile(rb"^event: (\S+)$", re.MULTILINE)


@pytest.fixture
def run(api_as, member):
    AppFactory(slug="demo")
    body = api_as(member).post("/api/runs/", {"app": "demo"}, format="json").json()
    return Run.objects.get(pk=body["id"])


def append(run, *types, **data):
    with transaction.atomic():
        return append_events(run_id=run.pk, events=[NewEvent(t, dict(data)) for t in types])[1]


def append_from_thread(run, *types, **data):
    """As a worker does: another thread (and connection) stores and publishes."""

    def target():
        try:
            append(run, *types, **data)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()


def run_scenario(scenario) -> None:
    """Run the coroutine on an event loop in its own thread, as uvicorn's loop is one that never touches
    the database itself (asgiref carries a loop thread's connection into ``sync_to_async`` calls); then
    close the connection the streams' storage reads opened in asgiref's thread."""
    outcome: list[BaseException] = []

    async def wrapped():
        try:
            await scenario()
        finally:
            await sync_to_async(lambda: connection.close())()

    def main():
        try:
            asyncio.run(wrapped())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=main)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the scenario did not finish within 60 s"
    if outcome:
        raise outcome[0]


def seqs(chunk: bytes) -> list[int]:
    return [int(s) for s in ID.findall(chunk)]


def block(run, seq, event_type="message.delta", **data):
    return live.make_block(run_channel(run.pk), seq, event_type, encode(data))


async def next_chunk(stream, timeout=5.0) -> bytes:
    return await asyncio.wait_for(anext(stream), timeout)


async def until_listening(hub, channel, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not hub.listeners.get(channel):
            await asyncio.sleep(0.005)


def test_history_then_live_events_in_order_and_the_end(local, run):
    append(run, "run.started", "message.delta")

    async def scenario():
        stream = _stream(run_channel(run.pk), after=0, end_on_finish=True)
        first = await next_chunk(stream)
        assert first.startswith(b":" + b" " * 2048)
        assert b"event: stream-open" in first
        assert seqs(first) == [1, 2, 3]
        await until_listening(local, run_channel(run.pk))
        await asyncio.to_thread(append_from_thread, run, "message.delta", "message.stop")
        assert seqs(await next_chunk(stream)) == [4, 5]
        await asyncio.to_thread(append_from_thread, run, "run.finished", status="succeeded")
        last = await next_chunk(stream)
        assert seqs(last) == [6]
        assert EVENT.findall(last) == [b"run.finished"]
        with pytest.raises(StopAsyncIteration):
            await next_chunk(stream)
        assert not local.listeners  # the stream let go of its listener

    run_scenario(scenario)


def test_a_gap_in_live_events_is_filled_from_storage_and_repeats_are_dropped(local, run):
    async def scenario():
        channel = run_channel(run.pk)
        stream = _stream(channel, after=0, end_on_finish=True)
        assert seqs(await next_chunk(stream)) == [1]
        # Stored but never published live (as if the publish was lost): 2 and 3.
        await asyncio.to_thread(lambda: live_publish_disabled(run, "message.delta", "message.delta"))
        # 4 arrives live, then a late repeat of 1 and 4.
        await asyncio.to_thread(append_from_thread, run, "message.stop")
        local.deliver(channel, [block(run, 1, "run.queued"), block(run, 4, "message.stop")])
        chunk = await next_chunk(stream)
        assert seqs(chunk) == [2, 3, 4]
        await asyncio.to_thread(append_from_thread, run, "run.finished", status="succeeded")
        assert seqs(await next_chunk(stream)) == [5]
        with pytest.raises(StopAsyncIteration):
            await next_chunk(stream)

    run_scenario(scenario)


def live_publish_disabled(run, *types):
    original = live.publish
    live.publish = lambda batches: None
    try:
        append(run, *types)
    finally:
        live.publish = original
        connection.close()


def test_a_reconnect_gets_exactly_what_it_missed(local, run):
    append(run, "run.started", "message.delta", "message.delta", "message.stop")

    async def scenario():
        stream = _stream(run_channel(run.pk), after=3, end_on_finish=True)
        assert seqs(await next_chunk(stream)) == [4, 5]
        await stream.aclose()

    run_scenario(scenario)


def test_a_finished_run_ends_the_stream_after_its_history_even_when_nothing_is_left(local, run):
    append(run, "run.started", "run.finished", status="succeeded")

    async def scenario():
        everything = [c async for c in _stream(run_channel(run.pk), after=0, end_on_finish=True)]
        assert seqs(b"".join(everything)) == [1, 2, 3]
        caught_up = [c async for c in _stream(run_channel(run.pk), after=3, end_on_finish=True)]
        assert seqs(b"".join(caught_up)) == []

    run_scenario(scenario)


def test_a_client_ahead_of_the_run_is_reset_to_its_last_event(local, run):
    async def scenario():
        stream = _stream(run_channel(run.pk), after=99, end_on_finish=True)
        chunk = await next_chunk(stream)
        assert b"event: stream-reset" in chunk
        assert f"id: {run_channel(run.pk)}:1".encode() in chunk
        await stream.aclose()

    run_scenario(scenario)


def test_a_full_buffer_falls_back_to_storage(local, run, monkeypatch):
    monkeypatch.setattr(live, "MAX_PENDING", 2)

    async def scenario():
        channel = run_channel(run.pk)
        stream = _stream(channel, after=0, end_on_finish=True)
        assert seqs(await next_chunk(stream)) == [1]
        await asyncio.to_thread(live_publish_disabled, run, *["message.delta"] * 5)
        for seq in (2, 3, 4, 5, 6):  # the buffer holds two; the rest set resync
            local.deliver(channel, [block(run, seq)])
        assert seqs(await next_chunk(stream)) == [2, 3, 4, 5, 6]
        await stream.aclose()

    run_scenario(scenario)


def test_a_quiet_stream_gets_keep_alives_and_later_re_checks_storage(local, run, monkeypatch):
    monkeypatch.setattr(live, "RECHECK_SWEEPS", (3, 3))

    async def scenario():
        stream = _stream(run_channel(run.pk), after=0, end_on_finish=True)
        assert seqs(await next_chunk(stream)) == [1]
        await asyncio.to_thread(live_publish_disabled, run, "message.delta")  # a lost publish
        local.sweep()  # the new stream counts as active until here
        for _ in range(2):
            local.sweep()  # quiet: a keep-alive, and no storage read yet
            assert await next_chunk(stream) == KEEP_ALIVE
        local.sweep()  # the third quiet sweep: storage is read, and a keep-alive goes out
        both = await next_chunk(stream) + await next_chunk(stream)
        assert seqs(both) == [2]
        assert KEEP_ALIVE in both
        await stream.aclose()

    run_scenario(scenario)


def test_the_todos_channel_carries_only_todo_updates_with_their_run_seqs(local, run):
    todos = {"todos": [{"id": "t1", "title": "Plan", "status": "pending"}]}

    async def scenario():
        stream = _stream(todos_channel(run.pk), after=0, end_on_finish=False)
        assert seqs(await next_chunk(stream)) == []
        await until_listening(local, todos_channel(run.pk))
        await asyncio.to_thread(append_from_thread, run, "message.delta", "todo.update", **todos)
        chunk = await next_chunk(stream)
        assert seqs(chunk) == [3]
        assert f"id: {todos_channel(run.pk)}:3".encode() in chunk
        await stream.aclose()

    run_scenario(scenario)


def test_a_listener_registered_before_the_run_exists_needs_no_storage_read_and_misses_nothing(hub, member):
    from runs.services import run_start
    from runs.views import queued_block

    app = AppFactory(slug="demo")
    run_id = uuid.uuid4()
    channel = run_channel(run_id)

    def start_and_finish():
        try:
            run, _ = run_start(user=member, app=app, input={}, run_id=run_id)
            append(run, "run.started", "message.delta", "run.finished", status="succeeded")
            return run
        finally:
            connection.close()

    async def scenario():
        assert await hub.wait_subscribed()
        listener = await asyncio.to_thread(hub.preregister, channel)
        assert listener is not None
        # Everything is published before the stream starts: only the early listener can have it.
        run = await asyncio.to_thread(start_and_finish)
        await asyncio.sleep(0.2)
        with no_storage_reads():
            chunks = [
                c
                async for c in _stream(
                    channel, after=0, end_on_finish=True, listener=listener, known=[queued_block(run)]
                )
            ]
        assert seqs(b"".join(chunks)) == [1, 2, 3, 4]
        assert not hub.listeners

    run_scenario(scenario)


def test_an_early_listener_whose_stream_never_starts_is_dropped(local):
    async def scenario():
        await local.wait_subscribed()
        listener = await asyncio.to_thread(local.preregister, run_channel(uuid.uuid4()))
        assert listener is not None
        local.sweep()
        assert local.listeners
        local.sweep()
        assert not local.listeners

    run_scenario(scenario)


@contextlib.contextmanager
def no_storage_reads():
    import runs.sse

    original = runs.sse._read

    async def refuse(*args):
        raise AssertionError("the stream read storage")

    runs.sse._read = refuse
    try:
        yield
    finally:
        runs.sse._read = original


# --- through Redis ---------------------------------------------------------------------------------------
def kill_subscribers():
    client = redis.Redis(**django_settings.EVENTSTREAM_REDIS)
    try:
        return client.client_kill_filter(_type="pubsub")
    finally:
        client.close()


def test_events_published_by_another_process_arrive_through_redis(hub, run):
    assert django_settings.EVENTSTREAM_REDIS

    async def scenario():
        stream = _stream(run_channel(run.pk), after=0, end_on_finish=True)
        assert seqs(await next_chunk(stream)) == [1]
        await asyncio.to_thread(append_from_thread, run, "run.started", "message.delta")
        assert seqs(await next_chunk(stream)) == [2, 3]
        await stream.aclose()

    run_scenario(scenario)


def test_a_lost_subscription_is_restored_and_streams_re_read_what_they_missed(hub, run):
    async def scenario():
        channel = run_channel(run.pk)
        stream = _stream(channel, after=0, end_on_finish=True)
        assert seqs(await next_chunk(stream)) == [1]
        assert hub.subscriptions == 1
        # Stored while the subscription is down, so never delivered live (stood in for by not publishing).
        await asyncio.to_thread(live_publish_disabled, run, "run.started", "message.delta")
        assert await asyncio.to_thread(kill_subscribers) >= 1
        assert seqs(await next_chunk(stream)) == [2, 3]  # redis-py resubscribed; the stream re-read storage
        assert hub.subscriptions >= 2  # one more confirmation (or more, if a reconnect failed first)
        await asyncio.to_thread(append_from_thread, run, "message.stop")
        assert seqs(await next_chunk(stream)) == [4]  # and live delivery goes on
        await stream.aclose()

    run_scenario(scenario)


def test_a_malformed_message_is_ignored(hub, run):
    async def scenario():
        stream = _stream(run_channel(run.pk), after=0, end_on_finish=True)
        assert seqs(await next_chunk(stream)) == [1]
        client = redis.Redis(**django_settings.EVENTSTREAM_REDIS)
        client.publish(live.REDIS_CHANNEL, b"not json")
        client.publish(live.REDIS_CHANNEL, json.dumps({"c": run_channel(run.pk)}))
        client.close()
        await asyncio.to_thread(append_from_thread, run, "run.started")
        assert seqs(await next_chunk(stream)) == [2]
        await stream.aclose()

    run_scenario(scenario)


def test_the_todos_stream_of_a_finished_run_sends_its_todos_and_ends(local, run):
    append(run, "todo.update", "run.finished", todos=[{"id": "t1", "title": "Plan"}], status="succeeded")

    async def scenario():
        stream = _stream(todos_channel(run.pk), after=0, end_on_finish=True)
        chunks = [chunk async for chunk in stream]
        assert seqs(b"".join(chunks)) == [2]

    run_scenario(scenario)


@pytest.mark.parametrize("through", ["this process", "Redis"])
def test_a_todos_stream_ends_when_its_run_finishes_while_it_is_open(through, request, hub, run):
    if through == "this process":
        request.getfixturevalue("local")
    todos = {"todos": [{"id": "t1", "title": "Plan", "status": "pending"}]}

    async def scenario():
        stream = _stream(todos_channel(run.pk), after=0, end_on_finish=True)
        assert seqs(await next_chunk(stream)) == []
        await until_listening(hub, todos_channel(run.pk))
        await asyncio.to_thread(append_from_thread, run, "todo.update", **todos)
        assert seqs(await next_chunk(stream)) == [2]
        await asyncio.to_thread(append_from_thread, run, "message.delta", "run.finished", status="failed")
        with pytest.raises(StopAsyncIteration):  # not a wait for the next sweep (10 s)
            await next_chunk(stream, timeout=3)
        assert not hub.listeners

    run_scenario(scenario)
