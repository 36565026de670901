"""What a handler tells the queue about one attempt."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    DONE = "done"
    COMPLETED = "completed"  # done, and the handler already marked the entry so (lease_complete)
    RETRY = "retry"
    FAIL = "fail"
    PARK = "park"


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    error_class: str = ""
    error_detail: str = ""

    @classmethod
    def done(cls) -> Outcome:
        return cls(Kind.DONE)

    @classmethod
    def completed(cls) -> Outcome:
        """Done, and already written: the handler called ``lease_complete`` in its last transaction."""
        return cls(Kind.COMPLETED)

    @classmethod
    def park(cls) -> Outcome:
        return cls(Kind.PARK)

    @classmethod
    def retry(cls, error_class: str, detail: str = "") -> Outcome:
        """A transient failure (timeout, network, 5xx): try again after a backoff, up to max_attempts."""
        return cls(Kind.RETRY, error_class, detail[:4000])

    @classmethod
    def fail(cls, error_class: str, detail: str = "") -> Outcome:
        """A permanent failure (4xx, bad input): never retried."""
        return cls(Kind.FAIL, error_class, detail[:4000])
