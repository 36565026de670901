"""The one place the queue meets the domain: the runs app registers the handler that runs an entry."""

from __future__ import annotations

from typing import Protocol

from django.utils.module_loading import import_string

from run_queue.models import QueueEntry
from run_queue.outcomes import Outcome


class Handler(Protocol):
    def handle(self, entry: QueueEntry) -> Outcome:
        """Run one attempt of ``entry``'s run. Raising counts as a retryable failure."""
        ...

    def on_dead(self, entry: QueueEntry) -> None:
        """Called once the entry is dead (failed permanently or out of attempts), to fail the run."""
        ...


class FunctionHandler:
    """Adapts a plain ``handle(entry) -> Outcome`` function (benchmarks, tests) to the protocol."""

    def __init__(self, function) -> None:
        self.function = function

    def handle(self, entry: QueueEntry) -> Outcome:
        return self.function(entry)

    def on_dead(self, entry: QueueEntry) -> None:
        return None


_registered: Handler | None = None


def register(handler: Handler) -> None:
    global _registered
    _registered = handler


def registered() -> Handler | None:
    return _registered


def load(dotted_path: str | None = None) -> Handler:
    """The handler at ``dotted_path`` (a Handler instance or a plain function), else the registered one."""
    if dotted_path:
        target = import_string(dotted_path)
        return target if hasattr(target, "handle") else FunctionHandler(target)
    if _registered is None:
        raise LookupError("no queue handler registered: install the runs app or pass --handler")
    return _registered
