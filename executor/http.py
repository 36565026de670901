"""The little HTTP the executor needs on top of raw ASGI: requests, JSON responses, the one error shape."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = Iterable[tuple[str, str]]

MAX_BODY_BYTES = 1024 * 1024


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
            return json.loads(self.body)
        except ValueError as exc:
            message = "The request body is not valid JSON."
            raise ApiError(400, "invalid_json", message, detail=str(exc)) from None

    def json_object(self) -> dict[str, Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise ApiError(400, "invalid", "Invalid input.", detail={"body": "must be a JSON object"})
        return body


async def read_request(scope: Scope, receive: Receive) -> Request:
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
