"""Channels of a run's events, publishing them once stored, and the django-eventstream classes that serve
them through Pushpin.

Events are written by ``runs.events.append_events`` (many per transaction). Once committed they are
published to this project's live streams (``runs.live``, read by ``runs.sse``) and, when GRIP is
configured, to Pushpin. A stream request that came through Pushpin is answered by django-eventstream's
view with a GRIP hold, reading history through ``RunEventStorage`` and checking ``RunChannelManager``.

Channels: ``run-<uuid>`` carries every event of a run, ``todos-<uuid>`` only its ``todo.update`` events; the
SSE id of an event is its seq on both, so ``Last-Event-ID`` replays exactly what a client missed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django_eventstream.channelmanager import ChannelManagerBase
from django_eventstream.event import Event
from django_eventstream.storage import EventDoesNotExist, StorageBase

from runs import live

RUN_PREFIX = "run-"
TODOS_PREFIX = "todos-"
PERMISSION_TTL_S = 5.0


def run_channel(run_id) -> str:
    return f"{RUN_PREFIX}{run_id}"


def todos_channel(run_id) -> str:
    return f"{TODOS_PREFIX}{run_id}"


def parse_channel(channel: str) -> tuple[str, uuid.UUID] | None:
    for prefix in (RUN_PREFIX, TODOS_PREFIX):
        if channel.startswith(prefix):
            try:
                return prefix, uuid.UUID(channel[len(prefix) :])
            except ValueError:
                return None
    return None


def encode(data) -> str:
    return json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"))


def publish(run_id, events: Iterable) -> None:
    """Deliver stored events to live streams (called after the transaction that stored them commits):
    one batch per channel through ``runs.live``, and each event to Pushpin when GRIP is configured."""
    run, todos = run_channel(run_id), todos_channel(run_id)
    encoded = [(event.seq, event.type, encode(event.data)) for event in events]
    todo_updates = [event for event in encoded if event[1] == "todo.update"]
    live.publish([(run, encoded), (todos, todo_updates)])
    if getattr(settings, "GRIP_URL", None) or getattr(settings, "GRIP_PROXIES", None):
        from django_eventstream.utils import publish_event

        for channel, batch in ((run, encoded), (todos, todo_updates)):
            for seq, event_type, data in batch:
                publish_event(channel, event_type, data, str(seq), str(seq - 1), blocking=False)


class RunEventStorage(StorageBase):
    """django-eventstream storage over ``RunEvent``: the SSE id is the run's seq."""

    def append_event(self, channel, event_type, data):
        raise NotImplementedError("run events are written by runs.events.append_events")

    def get_events(self, channel, last_id, limit=100):
        from runs.selectors import run_history

        kind, run_id = self._parse(channel)
        rows = run_history(run_id, after=last_id, todos_only=kind == TODOS_PREFIX)
        events = [
            Event(channel, row.type, encode(row.data), id=row.seq)
            for row in rows.only("seq", "type", "data")[:limit]
        ]
        # Only an empty answer needs the current seq: to tell "caught up" from "ahead of the run".
        if not events and last_id > (current := self._current(run_id)):
            raise EventDoesNotExist("the client is ahead of the run", current)
        return events

    def get_current_id(self, channel):
        _, run_id = self._parse(channel)
        return self._current(run_id)

    @staticmethod
    def _parse(channel: str) -> tuple[str, uuid.UUID]:
        parsed = parse_channel(channel)
        if parsed is None:
            raise EventDoesNotExist(f"unknown channel {channel!r}", 0)
        return parsed

    @staticmethod
    def _current(run_id) -> int:
        from runs.selectors import run_position

        position = run_position(run_id)
        return position[0] if position else 0


class RunChannelManager(ChannelManagerBase):
    """Only users allowed to view a run may read its channels. Cached briefly: every wake-up of every
    stream asks again, and a fan-out of thousands of streams must not cost a query each."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, str], tuple[float, bool]] = {}

    def get_channels_for_request(self, request, view_kwargs):
        return set(view_kwargs.get("channels", []))

    def remember(self, user, channel: str) -> None:
        """Record that ``user`` may read ``channel`` (the view has just checked), saving the query."""
        self._cache[(user.pk, channel)] = (time.monotonic() + PERMISSION_TTL_S, True)

    def can_read_channel(self, user, channel):
        if user is None or not user.is_authenticated:
            return False
        key = (user.pk, channel)
        cached = self._cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        allowed = self._allowed(user, channel)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + PERMISSION_TTL_S, allowed)
        return allowed

    @staticmethod
    def _allowed(user, channel) -> bool:
        from runs.models import Run
        from runs.selectors import may_read

        parsed = parse_channel(channel)
        if parsed is None or not getattr(user, "is_authenticated", False):
            return False
        run = Run.objects.filter(pk=parsed[1]).only("user_id", "app_id").first()
        return run is not None and may_read(user, run)

    def is_channel_reliable(self, channel):
        return True
