"""Request bodies over API_MAX_BODY_BYTES are refused with a 413 in the one error shape before they are
read (controlplane/asgi_handler.py): on a declared Content-Length at once, on a chunked body at the first
chunk past the limit. Driven through the real ASGI handler, then through uvicorn."""

import asyncio
import json

import pytest
import requests

from controlplane.asgi_handler import ASGIHandler
from tests.stack import start_web

LIMIT = 1000


@pytest.fixture(scope="module")
def handler():
    return ASGIHandler(threads=2, max_body_bytes=LIMIT)


def call(handler, path, chunks, headers=()):
    """Send ``chunks`` as the request body; returns (status, JSON body or raw bytes, chunks read)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("localhost", 80),
    }
    sent: list[dict] = []
    read = 0

    async def receive():
        nonlocal read
        if read < len(chunks):
            read += 1
            return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}
        await asyncio.sleep(3600)  # the client waits for the answer

    async def send(message):
        sent.append(message)

    asyncio.run(asyncio.wait_for(handler(scope, receive, send), 10))
    status = sent[0]["status"]
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return status, body, read


def assert_too_large(status, body):
    assert status == 413
    error = json.loads(body)["error"]
    assert error == {
        "code": "too_large",
        "message": f"The request body exceeds {LIMIT} bytes.",
        "detail": {"max_bytes": LIMIT},
    }


@pytest.mark.parametrize("path", ["/api/runs/", "/api/auth/token/", "/admin/login/", "/nope"])
def test_a_declared_length_over_the_limit_is_refused_without_reading_the_body(handler, path):
    status, body, read = call(handler, path, [b"x" * 10], headers=[(b"content-length", b"1001")])
    assert_too_large(status, body)
    assert read == 0


def test_a_chunked_body_is_refused_at_the_first_chunk_past_the_limit(handler):
    chunks = [b"x" * 400] * 10  # no Content-Length: counted as it arrives
    status, body, read = call(handler, "/api/runs/", chunks)
    assert_too_large(status, body)
    assert read == 3


def test_a_body_at_the_limit_goes_through(handler):
    # An unknown API path: the 404 shows the request reached Django with its body read.
    status, _, read = call(handler, "/api/nope", [b"x" * 500, b"x" * 500])
    assert (status, read) == (404, 2)


@pytest.mark.slow
def test_uvicorn_serving_the_web_process_refuses_large_bodies(transactional_db, tmp_path):
    web, base = start_web(tmp_path, API_MAX_BODY_BYTES="2048")
    try:
        declared = requests.post(base + "/api/runs/", data=b"{" * 4096, timeout=10)
        chunked = requests.post(base + "/api/runs/", data=iter([b"{" * 1024] * 4), timeout=10)
        small = requests.post(base + "/api/runs/", json={"app": "x"}, timeout=10)
    finally:
        web.stop()
    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_large"
    assert small.status_code == 401  # under the limit: on to authentication
