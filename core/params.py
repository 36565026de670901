"""Strict readers of query parameters and headers: a malformed value is a 400 naming it, never a 500.

Python is lenient where the database is not: ``str.isdigit()`` and ``int()`` accept digits of every script
(``int("١٢") == 12``), ``int()`` raises ``ValueError`` past 4,300 digits, ``uuid.UUID()`` accepts braces,
``urn:`` prefixes and non-ASCII digits, and PostgreSQL's ``integer`` stops at 2**31 - 1 and its text
cannot hold NUL. These readers accept only the canonical ASCII spelling of each value.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext_lazy

from core.errors import DomainError

PG_INT_MAX = 2**31 - 1
LAST_EVENT_ID_MAX_LENGTH = 4096

_DIGITS = re.compile(r"[0-9]{1,10}")
_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,100}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# ISO 8601's extended form as people write it: a date, optionally a time to the minute, second or
# microsecond, optionally an offset. ASCII digits only (datetime.fromisoformat takes more spellings).
_MOMENT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?"
)


class InvalidParameter(DomainError):
    """The same shape as a serializer's field error: ``detail`` maps the parameter to its problems."""

    status = 400
    code = "invalid"
    message = gettext_lazy("Invalid input.")

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(detail={name: [problem]})


def integer(raw: str | None, *, name: str, default: int, minimum: int = 0, maximum: int = PG_INT_MAX) -> int:
    """``raw`` as an integer in ``[minimum, maximum]``; ``default`` when absent or empty."""
    if raw is None or raw == "":
        return default
    if not _DIGITS.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise InvalidParameter(name, f"Must be an integer from {minimum} to {maximum}.")
    return int(raw)


def uuid_value(raw: str, *, name: str) -> uuid.UUID:
    if not _UUID.fullmatch(raw):
        raise InvalidParameter(name, "Must be a UUID (8-4-4-4-12 hexadecimal digits).")
    return uuid.UUID(raw)


def choice(raw: str, *, name: str, choices: Collection[str]) -> str:
    if raw not in choices:
        raise InvalidParameter(name, f"Must be one of: {', '.join(sorted(choices))}.")
    return raw


def slug(raw: str, *, name: str) -> str:
    """A slug as the models store them (``SlugField(max_length=100)``)."""
    if not _SLUG.fullmatch(raw):
        raise InvalidParameter(name, "Must be a slug (letters, digits, - and _).")
    return raw


def text(raw: str, *, name: str, max_length: int) -> str:
    """A printable value a text column can store: no control characters (NUL included), bounded."""
    if len(raw) > max_length:
        raise InvalidParameter(name, f"At most {max_length} characters.")
    if _CONTROL.search(raw):
        raise InvalidParameter(name, "Must not contain control characters.")
    return raw


def moment(raw: str, *, name: str) -> datetime:
    """An ISO 8601 date or datetime as an aware datetime. A date is its first instant and a time without
    an offset is local, both in the server's time zone (``TIME_ZONE``)."""
    problem = "Must be an ISO 8601 date or datetime (2026-12-01, 2026-12-01T09:30:00Z, ...+08:00)."
    if not _MOMENT.fullmatch(raw):
        raise InvalidParameter(name, problem)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:  # a month 13, a 30 February, an hour 24
        raise InvalidParameter(name, problem) from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return value


def last_event_ids(raw: str, *, name: str) -> dict[str, int]:
    """An SSE ``Last-Event-ID``: comma-separated ``<channel>:<seq>`` ids, as {channel: seq}."""
    if len(raw) > LAST_EVENT_ID_MAX_LENGTH:
        raise InvalidParameter(name, f"At most {LAST_EVENT_ID_MAX_LENGTH} characters.")
    ids: dict[str, int] = {}
    for part in filter(None, raw.split(",")):
        channel, sep, seq = part.strip().rpartition(":")
        if not sep or not _DIGITS.fullmatch(seq) or int(seq) > PG_INT_MAX or _CONTROL.search(channel):
            raise InvalidParameter(name, f"Expected '<channel>:<seq>' ids, got {part[:100]!r}.")
        ids.setdefault(channel, int(seq))
    return ids
