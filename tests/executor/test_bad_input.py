"""The reference executor answers bad input with a 4xx in its error shape, never a 500: JSON nested too
deep, values it could not encode back, numbers that are not ASCII digits, bodies declared too large."""

import json
import socket
from urllib.parse import urlsplit

import pytest

from executor.http import MAX_BODY_BYTES
from tests.executor.test_http_surface import assert_error_shape
from tests.executor_support import start_body


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def post_raw(executor, path, raw):
    return executor.http("POST", path, data=raw, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000 + "]" * 100_000,  # Python's json recurses: RecursionError
        json.dumps(start_body()).replace('"delay_ms": 0', '"delay_ms": NaN'),
        json.dumps(start_body()).replace('"delay_ms": 0', '"delay_ms": ' + "1" * 5000),
    ],
)
def test_json_python_cannot_read_safely_is_invalid_json(executor, raw):
    assert_error_shape(post_raw(executor, "/v1/runs", raw), 400, "invalid_json")


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (json.dumps(start_body(run_input=nested(70))), "input.a.a"),
        (json.dumps(start_body(run_input={"k": "\ud800"})), "input.k"),
        (json.dumps(start_body()).replace('"delay_ms": 0', '"delay_ms": 1e999'), "input.delay_ms"),
    ],
)
def test_values_the_executor_could_not_carry_are_invalid_naming_where(executor, raw, where):
    error = assert_error_shape(post_raw(executor, "/v1/runs", raw), 400, "invalid")
    assert any(key.startswith(where) for key in error["detail"]), error


def test_an_answer_with_a_lone_surrogate_is_refused(executor):
    run_id = executor.start_run("long")
    raw = json.dumps({"request_id": "r", "answer": "\udc00"})
    assert_error_shape(post_raw(executor, f"/v1/runs/{run_id}/input", raw), 400, "invalid")
    executor.http("POST", f"/v1/runs/{run_id}/cancel")


@pytest.mark.parametrize("after", ["١٢", "-1", "1.0", "9" * 30])
def test_a_malformed_after_is_400(executor, after):
    run_id = executor.start_run("instant")
    response = executor.http("GET", f"/v1/runs/{run_id}/events", params={"after": after})
    error = assert_error_shape(response, 400, "invalid")
    assert "after" in error["detail"]


def read_response(sock: socket.socket) -> str:
    """The whole response: its head and body may arrive in separate reads (they did, on a loaded machine)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode()


def _length(data: bytes) -> int:
    head = data.partition(b"\r\n\r\n")[0].decode(errors="replace").lower()
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            return int(line.split(":", 1)[1])
    return 0


def test_a_body_declared_too_large_is_refused_before_it_is_sent(executor):
    url = urlsplit(executor.base_url)
    request = (
        f"POST /v1/runs HTTP/1.1\r\nHost: {url.hostname}\r\nAuthorization: Bearer {executor.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(request.encode())  # and not one byte of the body
        answer = read_response(sock)
    assert answer.startswith("HTTP/1.1 413"), answer
    assert '"too_large"' in answer
