"""The audit of the file browser: one ``FileAccessEvent`` per list, stat or download, whatever its outcome.

Rows are written with one INSERT on the request's own connection in autocommit: the file views open no
transaction (and the ``files.E002`` check refuses ``ATOMIC_REQUESTS``), so a failure later in the request
cannot roll a row back, and no second connection per web thread is needed for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.http import HttpRequest
from django.utils import timezone

from core import tracing
from core.audit import request_id
from core.db import insert_rows
from core.throttling import client_address
from files.models import FileAccessEvent, FileRoot

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
REQUESTED_PATH_MAX = 4200  # a path at the limit (4,096 bytes) with some escapes, then cut


def printable(text: str, limit: int) -> str:
    """``text`` with control characters as ``\\xNN`` (PostgreSQL text cannot hold NUL), cut to ``limit``."""
    escaped = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    return escaped.encode("utf-8", "backslashreplace").decode("utf-8")[:limit]


@dataclass
class Access:
    """What one request asked for, filled in as the view learns more, and written once by ``record``."""

    request: HttpRequest
    action: str
    root_name: str
    requested_path: str
    root: FileRoot | None = None
    resolved_path: str = ""
    range: str = ""
    recorded: list[str] = field(default_factory=list)

    def record(self, *, outcome: str, status: int, reason: str = "", bytes_sent: int = 0) -> None:
        user = self.request.user
        authenticated = bool(getattr(user, "is_authenticated", False))
        values = {
            "created_at": timezone.now(),
            "user_id": user.pk if authenticated else None,
            "username": user.get_username()[:150] if authenticated else "",
            "action": self.action,
            "root_id": self.root.pk if self.root is not None else None,
            "root_name": printable(self.root_name, 200),
            "requested_path": printable(self.requested_path, REQUESTED_PATH_MAX),
            "resolved_path": printable(self.resolved_path, REQUESTED_PATH_MAX),
            "outcome": outcome,
            "reason": reason[:100],
            "status": status,
            "range": printable(self.range, 200),
            "bytes_sent": bytes_sent,
            "client_ip": client_address(self.request) or None,
            "user_agent": printable(self.request.META.get("HTTP_USER_AGENT", ""), 500),
            "request_id": (request_id() or getattr(self.request, "request_id", "") or "")[:100],
            "trace_id": tracing.log_ids().get("trace_id", ""),
        }
        insert_rows(FileAccessEvent, list(values), [list(values.values())])
        self.recorded.append(outcome)
