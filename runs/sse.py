"""A run's channel over Server-Sent Events: its history from storage, then live events, in seq order.

The wire format is django-eventstream's (``id: run-<uuid>:<seq>``, a ``stream-open`` event first,
``stream-reset`` for a client that is ahead, ``keep-alive`` events), so its clients and Pushpin's GRIP
handling keep working; a request that came through Pushpin is answered by django-eventstream's own view
with a GRIP hold. Everything else is served here, on the event loop, from ``runs.live``:

* the stream subscribes before it reads storage, and reads storage again whenever live delivery cannot
  prove it is complete (a gap in seqs, an overflowing buffer, a re-established subscription, or 30-60 s
  of silence; a keep-alive goes out after 10-20 s), so no event is ever missed; none is sent twice either
  (ids are seqs: anything at or below the last one sent is dropped);
* an event is encoded once per channel, not once per stream, and a stream costs no thread while it waits.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import AsyncIterator, Callable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from django.utils.translation import gettext_lazy
from rest_framework.renderers import BaseRenderer, JSONRenderer

from core import params
from core.errors import TooManyRequests
from core.params import InvalidParameter
from runs import inbox, live
from runs.models import ACTIVE_STATUSES
from runs.selectors import run_history, run_position
from runs.streaming import TODOS_PREFIX, encode, parse_channel

OPENING = (":" + " " * 2048 + "\n\n" + "event: stream-open\ndata:\n\n").encode()
KEEP_ALIVE = b"event: keep-alive\ndata:\n\n"
RESYNC_HINT = f'event: {inbox.HINT}\ndata: {{"reason":"resync"}}\n\n'.encode()
READ_LIMIT = 500


class TooManyStreams(TooManyRequests):
    code = "too_many_streams"
    message = gettext_lazy("Too many event streams open; close one first.")
    retry_after = 5


class StreamSlots:
    """The streams each user holds open in this process, up to ``STREAMS_MAX_PER_USER``."""

    def __init__(self) -> None:
        self.open: dict[int, int] = {}
        self._lock = threading.Lock()

    def take(self, user_id: int) -> Callable[[], None]:
        """A slot for one more stream (or ``TooManyStreams``), and the function that frees it (once)."""
        limit = settings.STREAMS_MAX_PER_USER
        with self._lock:
            held = self.open.get(user_id, 0)
            if limit and held >= limit:
                raise TooManyStreams(detail={"limit": limit})
            self.open[user_id] = held + 1
        freed = threading.Event()

        def free() -> None:
            with self._lock:
                if freed.is_set():
                    return
                freed.set()
                if self.open[user_id] > 1:
                    self.open[user_id] -= 1
                else:
                    del self.open[user_id]

        return free


stream_slots = StreamSlots()


def take_stream_slot(request: HttpRequest) -> Callable[[], None]:
    return stream_slots.take(request.user.pk) if request.user.pk is not None else (lambda: None)


class EventStreamRenderer(BaseRenderer):
    """Lets DRF's content negotiation accept ``Accept: text/event-stream``; errors still render as JSON."""

    media_type = "text/event-stream"
    format = "sse"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)


def stream_channel(
    request: HttpRequest,
    channel: str,
    *,
    end_on_finish: bool,
    listener: live.Listener | None = None,
    known: list[live.Block] | None = None,
    free: Callable[[], None] | None = None,
) -> StreamingHttpResponse:
    """The channel's events after the client's ``Last-Event-ID`` (or ``?lastEventId=``), then live ones.

    The caller has checked that the user may see the run. A client that gives no id gets the whole
    history. With ``end_on_finish`` the response ends after ``run.finished`` (an ``EventSource`` should
    close on it rather than reconnect), or, on a channel without it (todos), once the run is terminal.
    Each user holds at most ``STREAMS_MAX_PER_USER`` streams open in this process (``TooManyStreams``).

    ``listener`` was registered (``LiveHub.preregister``) before the channel's first event was stored;
    with ``known``, the events stored until then, the stream starts without reading storage. ``free``
    frees a slot the caller took already (``take_stream_slot``).
    """
    grip = getattr(request, "grip", None)
    try:
        after = last_event_seq(request, channel)
    except InvalidParameter:
        if free is not None:
            free()
        raise
    if grip is not None and grip.proxied:
        if free is not None:
            free()  # Pushpin holds the connection: it costs this process no stream
        return _grip_hold(request, channel)
    if listener is None or after:
        known = None
    if free is None:
        free = take_stream_slot(request)
    content = _stream(
        channel, after=after, end_on_finish=end_on_finish, listener=listener, known=known, free=free
    )
    return event_stream_response(content, free)


def event_stream_response(content: AsyncIterator[bytes], free: Callable[[], None]) -> StreamingHttpResponse:
    # The slot is freed when the stream ends (or its client leaves), or, for a response never sent (the
    # client left before it started), when the unstarted stream is dropped.
    weakref.finalize(content, free)
    response = StreamingHttpResponse(content, content_type="text/event-stream")
    response["X-Accel-Buffering"] = "no"
    response["Cache-Control"] = "no-cache"
    return response


def stream_hints(request: HttpRequest, channel: str) -> StreamingHttpResponse:
    """A channel of hints (``runs.inbox``): no history and no ids, only what is published while the
    stream is open, plus a hint of its own whenever live delivery may have missed one (a re-established
    subscription, an overflowing buffer, a quiet re-check), so the client reads its list again. The caller
    has checked that the channel is the user's own. It holds one of the user's stream slots."""
    free = take_stream_slot(request)
    return event_stream_response(_hints(channel, free=free), free)


async def _hints(channel: str, *, free: Callable[[], None]) -> AsyncIterator[bytes]:
    hub = live.hub()
    await hub.wait_subscribed()
    listener = hub.add(channel)  # before the client is told the stream is open, and reads its list
    try:
        yield OPENING
        while True:
            out = [block.text for block in listener.pending]
            listener.pending = []
            if listener.resync:
                listener.resync = False
                out.append(RESYNC_HINT)
            if listener.idle:
                listener.idle = False
                out.append(KEEP_ALIVE)
            if out:
                yield b"".join(out)
            listener.wake.clear()
            if not (listener.pending or listener.idle or listener.resync):
                await listener.wake.wait()
    finally:
        hub.remove(listener)
        free()


def last_event_ids(request: HttpRequest) -> dict[str, int]:
    """The client's ``Last-Event-ID`` (or ``?lastEventId=``) as {channel: seq}, read strictly
    (``core.params``: a malformed one is a 400). A view that writes before it streams calls this first."""
    header = request.headers.get("Last-Event-ID")
    if header:
        return params.last_event_ids(header, name="Last-Event-ID")
    query = request.GET.get("lastEventId")
    return params.last_event_ids(query, name="lastEventId") if query else {}


def last_event_seq(request: HttpRequest, channel: str) -> int:
    """The seq after which the client wants events on ``channel`` (its id may sit among other channels'),
    else 0 (the whole history)."""
    return last_event_ids(request).get(channel, 0)


def _grip_hold(request: HttpRequest, channel: str) -> StreamingHttpResponse:
    from django_eventstream.utils import get_channelmanager
    from django_eventstream.views import events

    if not request.headers.get("Last-Event-ID") and not request.GET.get("lastEventId"):
        query = request.GET.copy()
        query["lastEventId"] = f"{channel}:0"  # django-eventstream alone would start at the current id
        request.GET = query  # type: ignore[assignment]
    get_channelmanager().remember(request.user, channel)  # the view has checked it: no second query
    return events(request, channels=[channel])


async def _stream(
    channel: str,
    *,
    after: int,
    end_on_finish: bool,
    listener: live.Listener | None = None,
    known: list[live.Block] | None = None,
    free: Callable[[], None] = lambda: None,
) -> AsyncIterator[bytes]:
    hub = live.hub()
    if listener is None:
        await hub.wait_subscribed()
    # Registered before the first read (or before the first event): whatever is published after it reaches us.
    stream = _ChannelStream(channel, hub.add(channel, listener), after)
    try:
        async for chunk in stream.chunks(known=known, end_on_finish=end_on_finish):
            yield chunk
    finally:
        hub.remove(stream.listener)
        free()


class _ChannelStream:
    """One client's position in a channel: what it has been sent (``last``) and what is waiting for it."""

    def __init__(self, channel: str, listener: live.Listener, after: int) -> None:
        parsed = parse_channel(channel)
        assert parsed is not None
        self.channel, self.listener, self.last = channel, listener, after
        self.kind, self.run_id = parsed
        self.contiguous = self.kind != TODOS_PREFIX  # the todos channel carries some seqs: gaps are normal
        self.out: list[bytes] = [OPENING]

    async def chunks(self, *, known: list[live.Block] | None, end_on_finish: bool) -> AsyncIterator[bytes]:
        listener = self.listener
        need_read, first_read = known is None, True
        listener.pending[:0] = known or []
        while True:
            over, more = False, False
            if need_read:
                listener.resync = need_read = False
                over, more = await self._catch_up(first_read)
                first_read = False
            if not over and not more:
                over, need_read = self._take_live()
            if self.out:
                yield b"".join(self.out)
                self.out = []
            if over and end_on_finish:
                return
            if listener.idle:  # nothing for a whole sweep: keep the connection alive through proxies
                listener.idle = False
                yield KEEP_ALIVE
            need_read = need_read or more or listener.resync
            if need_read:
                continue
            # Anything signalled while this stream was suspended at a yield is in these flags.
            listener.wake.clear()
            if not (listener.pending or listener.idle or listener.resync):
                await listener.wake.wait()

    async def _catch_up(self, first_read: bool) -> tuple[bool, bool]:
        """Send what storage has after ``last``; returns (nothing more will come, more history to read)."""
        blocks, current, active = await _read(self.channel, self.run_id, self.kind, self.last)
        if first_read and self.last > current:  # the client is ahead of the run: start again from its end
            self.out.append(_reset(self.channel, current))
            self.last = current
            blocks, current, active = await _read(self.channel, self.run_id, self.kind, self.last)
        finished = False
        for block in blocks:
            if block.seq > self.last:
                self.out.append(block.text)
                self.last = block.seq
                finished = finished or block.final
        more = len(blocks) == READ_LIMIT
        return finished or (not more and not active), more

    def _take_live(self) -> tuple[bool, bool]:
        """Send what live delivery brought; returns (the run finished, storage must be read: a gap)."""
        pending, self.listener.pending = self.listener.pending, []
        for block in pending:
            if block.seq <= self.last:
                continue  # already sent: storage and live delivery overlap
            if self.contiguous and block.seq != self.last + 1:
                return False, True  # something was missed: storage has it
            self.out.append(block.text)
            self.last = block.seq
            if block.final:
                return True, False
        return False, False


def _reset(channel: str, current: int) -> bytes:
    return f'event: stream-reset\nid: {channel}:{current}\ndata: {{"channels": ["{channel}"]}}\n\n'.encode()


@sync_to_async
def _read(channel: str, run_id: uuid.UUID, kind: str, after: int) -> tuple[list[live.Block], int, bool]:
    """Up to READ_LIMIT stored events after ``after``, the run's last seq, and whether it is still active."""
    current, status = run_position(run_id) or (0, "")
    rows = run_history(run_id, after=after, todos_only=kind == TODOS_PREFIX)
    blocks = [
        live.make_block(channel, seq, event_type, encode(data))
        for seq, event_type, data in rows.values_list("seq", "type", "data")[:READ_LIMIT]
    ]
    return blocks, current, status in ACTIVE_STATUSES
