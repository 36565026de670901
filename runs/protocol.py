"""What an executor sends, checked at the boundary before anything is stored.

Unknown event types are skipped (protocol v1 promises forward compatibility); a known type whose data is
malformed raises ``ProtocolViolation`` naming the event and the field, which fails the run with
``protocol_error`` instead of crashing the insert and burning every retry. The checks are written out, not a
JSON Schema validation: they run for every event of every run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runs.models import TERMINAL_STATUSES, TodoStatus

STORED_TYPES = frozenset(
    {
        "run.started",
        "run.finished",
        "message.delta",
        "message.stop",
        "tool.call",
        "tool.result",
        "todo.update",
        "human_loop.request",
        "human_loop.reply",
    }
)
FINAL_STATUSES = frozenset(TERMINAL_STATUSES)  # what a run.finished may report
TODO_STATUSES = frozenset(TodoStatus.values)
MAX_ID = 100  # request, call, message and todo ids are stored in columns of this size
MAX_TODOS = 500


class ProtocolViolation(Exception):
    code = "protocol_error"

    def __init__(self, seq: int, event_type: str, problem: str) -> None:
        super().__init__(f"executor event {seq} ({event_type}): {problem}")


def _string(data: dict, key: str, *, required: bool = True, max_length: int | None = None) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise ValueError(f"`{key}` must be a non-empty string" if required else f"`{key}` must be a string")
    if max_length is not None and len(value) > max_length:
        raise ValueError(f"`{key}` is longer than {max_length} characters")
    return value


def _finished(data: dict) -> None:
    if data.get("status") not in FINAL_STATUSES:
        raise ValueError(f"`status` must be one of {sorted(FINAL_STATUSES)}")
    error = data.get("error")
    if error is None:
        return
    if not isinstance(error, dict):
        raise ValueError("`error` must be an object")
    _string(error, "code", required=False)
    _string(error, "message", required=False)


def _todo_update(data: dict) -> None:
    todos = data.get("todos")
    if not isinstance(todos, list) or len(todos) > MAX_TODOS:
        raise ValueError(f"`todos` must be a list of at most {MAX_TODOS}")
    seen: set[str] = set()
    for index, todo in enumerate(todos):
        if not isinstance(todo, dict):
            raise ValueError(f"`todos[{index}]` must be an object")
        todo_id = todo.get("id")
        if not isinstance(todo_id, str | int) or isinstance(todo_id, bool) or str(todo_id) == "":
            raise ValueError(f"`todos[{index}].id` must be a non-empty string")
        if len(str(todo_id)) > MAX_ID or str(todo_id) in seen:
            raise ValueError(f"`todos[{index}].id` is too long or repeated")
        seen.add(str(todo_id))
        _string(todo, "title", required=False)
        if todo.get("status", "pending") not in TODO_STATUSES:
            raise ValueError(f"`todos[{index}].status` must be one of {sorted(TODO_STATUSES)}")


def _human_request(data: dict) -> None:
    _string(data, "request_id", max_length=MAX_ID)
    _string(data, "question")
    options = data.get("options")
    if options is not None and not (isinstance(options, list) and all(isinstance(o, str) for o in options)):
        raise ValueError("`options` must be a list of strings")


def _human_reply(data: dict) -> None:
    _string(data, "request_id", max_length=MAX_ID)


def _message(data: dict) -> None:
    _string(data, "text", required=False)


_CHECKS: dict[str, Callable[[dict], None]] = {
    "run.finished": _finished,
    "todo.update": _todo_update,
    "human_loop.request": _human_request,
    "human_loop.reply": _human_reply,
    "message.delta": _message,
}


def checked(seq: int, event_type: str, data: Any) -> bool:
    """Whether to store this event: False for a type we do not know; raises ``ProtocolViolation`` for a
    known one that is malformed."""
    if event_type not in STORED_TYPES:
        return False
    if not isinstance(data, dict):
        raise ProtocolViolation(seq, event_type, "`data` must be an object")
    check = _CHECKS.get(event_type)
    if check is not None:
        try:
            check(data)
        except ValueError as exc:
            raise ProtocolViolation(seq, event_type, str(exc)) from None
    return True
