"""The little HTTP the executor needs on top of raw ASGI: requests, JSON responses, the one error shape."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = Iterable[tuple[str, str]]

# Protocol v1's request-body limit in the reference executor. The control plane's EXECUTOR_MAX_BODY_BYTES
# and API_MAX_BODY_BYTES default to the same number (a test checks they agree): this package imports
# nothing of the control plane, so the number is written in both places.
MAX_BODY_BYTES = 1024 * 1024
# Python's json has no depth limit (deep nesting ends in a RecursionError); a lone surrogate cannot be
# encoded back as UTF-8, and an infinity has no JSON spelling: each would fail later, when echoed.
MAX_JSON_DEPTH = 64
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


class ApiError(Exception):
    """A failure the caller caused or must know about, answered as ``{"error": {code, message, detail}}``."""

    def __init__(self, status: int, code: str, message: str, *, detail: Any = None, headers: Headers = ()):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = tuple(headers)


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        if not self.body:
            raise ApiError(400, "invalid_json", "The request body must be a JSON document.")
        try:
            document = json.loads(self.body, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            message = "The request body is not valid JSON."
            raise ApiError(400, "invalid_json", message, detail=str(exc)[:200]) from None
        problem = json_problem(document)
        if problem is not None:
            raise ApiError(400, "invalid", "Invalid input.", detail={problem[0]: problem[1]})
        return document

    def json_object(self) -> dict[str, Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise ApiError(400, "invalid", "Invalid input.", detail={"body": "must be a JSON object"})
        return body


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_problem(value: Any) -> tuple[str, str] | None:
    """Where in a decoded document the first value this executor cannot carry is, and why."""
    stack: list[tuple[Any, str, int]] = [(value, "body", 1)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return where, f"nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, str) and _LONE_SURROGATE.search(item):
            return where, "a lone surrogate cannot be encoded"
        if isinstance(item, float) and not math.isfinite(item):
            return where, "a number too large to be finite"
        if isinstance(item, dict):
            for key, child in item.items():
                if _LONE_SURROGATE.search(key):
                    return where, "a key with a lone surrogate cannot be encoded"
                stack.append((child, key if where == "body" else f"{where}.{key}", depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
    return None


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() and len(value) <= 18 else 0
    return 0


async def read_request(scope: Scope, receive: Receive) -> Request:
    if _declared_length(scope) > MAX_BODY_BYTES:  # refused before reading any of it
        raise ApiError(413, "too_large", f"The request body exceeds {MAX_BODY_BYTES} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"The request body exceeds {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    return Request(scope["method"], scope["path"], query, headers, b"".join(chunks))


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail}}


def dump_json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


async def send_json(send: Send, status: int, payload: Any, headers: Headers = ()) -> None:
    body = dump_json(payload)
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: ApiError) -> None:
    await send_json(send, error.status, error_body(error.code, error.message, error.detail), error.headers)
