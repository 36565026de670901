"""A run's events as Server-Sent Events, from a sequence number until the run's terminal event.

A follower that is behind gets many events per write (one ``send`` of up to ``MAX_BATCH`` pre-encoded
messages), which is what lets one stream carry tens of thousands of events a second. A quiet stream gets a
keep-alive comment every ``keepalive_s``, so the client's read timeout only fires on a dead connection.
"""

from __future__ import annotations

import asyncio

from executor.http import Receive, Send
from executor.runs import Run

MAX_BATCH = 1000
KEEPALIVE = b": keep-alive\n\n"
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell nginx-style proxies not to buffer the stream
]


async def _write(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _follow(send: Send, run: Run, after: int, keepalive_s: float, cut_after: int | None) -> bool:
    """Write events after ``after``; True to end the response (after the terminal event, or when the run
    was forgotten), False to cut the connection (fault injection)."""
    cursor, written = after, 0
    while not run.forgotten:
        batch = run.events_after(cursor, MAX_BATCH)
        if cut_after is not None and written + len(batch) >= cut_after:
            await _write(send, b"".join(event.wire for event in batch[: cut_after - written]))
            return False
        if batch:
            await _write(send, b"".join(event.wire for event in batch))
            cursor, written = batch[-1].seq, written + len(batch)
            if batch[-1].type == "run.finished":
                return True
        elif run.terminal:
            return True  # the caller was already past the terminal event
        elif not await run.wait_beyond(cursor, keepalive_s):
            await _write(send, KEEPALIVE)
    return (
        True  # forgotten (shutdown, or the forget fault): end the stream; the client sees no terminal event
    )


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def stream_events(
    receive: Receive, send: Send, run: Run, *, after: int, keepalive_s: float, cut_after: int | None
) -> None:
    """Stream until the run finishes or the client leaves. Returning without ending the response body
    makes the server drop the connection, which is how a cut looks to the client: a stream that breaks
    before the terminal event."""
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    follower = asyncio.ensure_future(_follow(send, run, after, keepalive_s, cut_after))
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        done, _ = await asyncio.wait({follower, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        follower.cancel()
        gone.cancel()
    if follower in done and follower.result():
        await send({"type": "http.response.body", "body": b"", "more_body": False})
