"""Serving a run's channel over SSE through django-eventstream."""

from __future__ import annotations

import re
from itertools import pairwise

from django.http import HttpRequest, StreamingHttpResponse
from django_eventstream.utils import get_channelmanager
from django_eventstream.views import events
from rest_framework.renderers import BaseRenderer, JSONRenderer

TERMINAL_MARKER = "event: run.finished\n"


class EventStreamRenderer(BaseRenderer):
    """Lets DRF's content negotiation accept ``Accept: text/event-stream``; errors still render as JSON."""

    media_type = "text/event-stream"
    format = "sse"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)


def stream_channel(request: HttpRequest, channel: str, *, end_on_finish: bool) -> StreamingHttpResponse:
    """The channel's events after the client's ``Last-Event-ID`` (or ``?lastEventId=``), then live ones.

    A client that gives no id gets the whole history first: django-eventstream alone would start at the
    current id. With ``end_on_finish`` the response ends after ``run.finished`` instead of idling on
    keep-alives (an ``EventSource`` should close on that event rather than reconnect).
    """
    if not request.headers.get("Last-Event-ID") and not request.GET.get("lastEventId"):
        query = request.GET.copy()
        query["lastEventId"] = f"{channel}:0"
        request.GET = query  # type: ignore[assignment]
    get_channelmanager().remember(request.user, channel)  # the view has checked it: no second query
    response = events(request, channels=[channel])
    if isinstance(response, StreamingHttpResponse) and response.is_async:
        response.streaming_content = _in_order(response.streaming_content, end_on_finish=end_on_finish)
    response["X-Accel-Buffering"] = "no"
    response["Cache-Control"] = "no-cache"
    return response


async def _in_order(chunks, *, end_on_finish: bool):
    """Pass the stream through, dropping any event at or below the last seq already sent.

    django-eventstream 5.3.4 re-reads storage from the request's starting id when live events arrive while
    it reads history, and so can send events twice; our ids are seqs, so a duplicate is easy to recognise.
    """
    last_seq = -1
    try:
        async for chunk in chunks:
            text = chunk if isinstance(chunk, str) else chunk.decode()
            kept, last_seq, finished = _filter_blocks(text, last_seq)
            if kept:
                yield kept
            if finished and end_on_finish:
                return
    finally:
        await chunks.aclose()


_ID = re.compile(r"^id: [^\n]*:(\d+)$", re.MULTILINE)


def _filter_blocks(text: str, last_seq: int) -> tuple[str, int, bool]:
    """Drop events at or below ``last_seq``; the common case (all newer) returns ``text`` untouched."""
    seqs = [int(seq) for seq in _ID.findall(text)]
    finished = TERMINAL_MARKER in text
    if not seqs:
        return text, last_seq, finished
    if seqs[0] > last_seq and all(a < b for a, b in pairwise(seqs)):
        return text, seqs[-1], finished
    kept = []
    for block in text.split("\n\n"):
        match = _ID.search(block)
        if match:
            seq = int(match.group(1))
            if seq <= last_seq:
                continue
            last_seq = seq
        kept.append(block)
    return "\n\n".join(kept), last_seq, finished
