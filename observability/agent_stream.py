"""The ``agents`` channel over Server-Sent Events: ``agent_status`` events after the client's id, then live.

It rides the runs' live delivery (``runs.live``: one Redis subscription per process, or this process alone
without Redis) and wire format (``runs.sse``: ``stream-open`` first, ``keep-alive`` when quiet, ids
``agents:<change id>``). Its history is ``AgentStatusChange``: the stream subscribes before it reads
storage, and reads it again whenever live delivery cannot prove it is complete (ids that skip, a full
buffer, a re-established subscription, a quiet re-check), dropping anything at or below the last id sent.
Change ids are committed in increasing order (``observability.agent_status``), so nothing is missed.

Without an id the stream starts at the present: the client reads ``GET /api/agents/status`` first and
opens the stream with that answer's ``last_event_id``, or takes whatever comes from now on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from asgiref.sync import sync_to_async
from django.http import HttpRequest, StreamingHttpResponse

from observability.agent_status import CHANNEL, EVENT, history_after, last_change_id
from runs import live
from runs.sse import KEEP_ALIVE, OPENING, READ_LIMIT, event_stream_response, last_event_ids, take_stream_slot
from runs.streaming import encode


def stream_agents(request: HttpRequest) -> StreamingHttpResponse:
    """The caller has checked that the user is an operator. Holds one of the user's stream slots."""
    after = last_event_ids(request).get(CHANNEL)  # a malformed id is a 400, before a slot is taken
    free = take_stream_slot(request)
    return event_stream_response(_stream(after, free=free), free)


def _block(change_id: int, data: dict) -> live.Block:
    return live.make_block(CHANNEL, change_id, EVENT, encode(data))


@sync_to_async
def _read(after: int) -> tuple[list[live.Block], int]:
    """Up to READ_LIMIT changes after ``after`` and the last change id."""
    return [_block(pk, data) for pk, data in history_after(after, READ_LIMIT)], last_change_id()


def _reset(current: int) -> bytes:
    return f'event: stream-reset\nid: {CHANNEL}:{current}\ndata: {{"channels": ["{CHANNEL}"]}}\n\n'.encode()


async def _stream(after: int | None, *, free: Callable[[], None]) -> AsyncIterator[bytes]:
    hub = live.hub()
    await hub.wait_subscribed()
    listener = hub.add(CHANNEL)  # before the first read: whatever is published after it reaches us
    try:
        out = [OPENING]
        blocks: list[live.Block]
        if after is None:  # no id: from now on
            blocks, last = [], await sync_to_async(last_change_id)()
        else:
            blocks, current = await _read(after)
            last = after
            if after > current:  # the client is ahead (a restored database): start again from the end
                out.append(_reset(current))
                last = current
        need_read = False
        while True:
            if need_read:
                listener.resync = need_read = False
                blocks, _current = await _read(last)
            for block in blocks:
                if block.seq > last:
                    out.append(block.text)
                    last = block.seq
            need_read = len(blocks) == READ_LIMIT
            blocks = []
            pending, listener.pending = listener.pending, []
            for block in pending:
                if block.seq <= last:
                    continue  # already sent: storage and live delivery overlap
                if block.seq != last + 1:
                    need_read = True  # ids skipped: a rolled-back change, or one live delivery lost
                    break
                out.append(block.text)
                last = block.seq
            if listener.idle:
                listener.idle = False
                out.append(KEEP_ALIVE)
            if out:
                yield b"".join(out)
                out = []
            need_read = need_read or listener.resync
            if need_read:
                continue
            listener.wake.clear()
            if not (listener.pending or listener.idle or listener.resync):
                await listener.wake.wait()
    finally:
        hub.remove(listener)
        free()
