"""Downloads through the real web process (uvicorn, our ASGI handler): Range over HTTP, a file larger
than many chunks arriving whole, a file that shrinks mid-stream cut short (never padded), and the audit."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest

from files.models import FileAccessEvent
from observability.models import Span
from tests.executor_support import wait_until
from tests.factories import FileRootFactory, file_acl

pytestmark = pytest.mark.slow


@pytest.fixture
def served(stack, transactional_db, client_for, tmp_path):
    data = tmp_path / "served"
    data.mkdir()
    client = client_for("reader")
    from django.contrib.auth import get_user_model

    root = FileRootFactory(name="served", path=str(data))
    file_acl(get_user_model().objects.get(username="reader"), root, "", "read")
    return data, client


def test_a_large_download_and_a_range_over_http(served):
    data, client = served
    content = os.urandom(1 << 20) * 5 + b"tail"  # five default chunks and a bit
    (data / "big.bin").write_bytes(content)
    response = client.get("/api/files/served/download", params={"path": "big.bin"}, stream=True)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(content))
    digest = hashlib.sha256()
    for chunk in response.iter_content(1 << 20):
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(content).hexdigest()
    ranged = client.get(
        "/api/files/served/download", params={"path": "big.bin"}, headers={"Range": "bytes=-4"}
    )
    assert (ranged.status_code, ranged.content, ranged.headers["Content-Range"]) == (
        206,
        b"tail",
        f"bytes {len(content) - 4}-{len(content) - 1}/{len(content)}",
    )
    rows = list(FileAccessEvent.objects.order_by("id").values_list("outcome", "status", "bytes_sent"))
    assert rows == [("allowed", 200, len(content)), ("allowed", 206, 4)]
    event = FileAccessEvent.objects.order_by("id").first()
    assert len(event.trace_id) == 32  # the access's span, in the audit row and in the Span table
    wait_until(
        lambda: Span.objects.filter(trace_id=event.trace_id, name="files.download").exists(), timeout=10
    )


def test_a_file_that_shrinks_mid_stream_is_cut_short_and_audited(served, stack):
    data, client = served
    path = data / "shrinks.bin"
    path.write_bytes(b"a" * (8 << 20))
    with socket.create_connection(("127.0.0.1", int(stack.base.rsplit(":", 1)[1])), timeout=10) as sock:
        request = (
            "GET /api/files/served/download?path=shrinks.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Token {client.token}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(request.encode())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200")
        os.truncate(path, 1 << 20)
        received = len(first)
        while chunk := sock.recv(1 << 16):
            received += len(chunk)
    assert received < 8 << 20  # the connection was closed before the promised length, not padded
    wait_until(lambda: FileAccessEvent.objects.filter(outcome="error").exists(), timeout=10)
    error = FileAccessEvent.objects.get(outcome="error")
    assert error.reason == "file_changed"
    assert error.bytes_sent == 1 << 20


def test_a_client_that_hangs_up_mid_download_is_audited(served, stack):
    data, client = served
    (data / "long.bin").write_bytes(b"b" * (64 << 20))
    with socket.create_connection(("127.0.0.1", int(stack.base.rsplit(":", 1)[1])), timeout=10) as sock:
        request = (
            "GET /api/files/served/download?path=long.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Token {client.token}\r\n\r\n"
        )
        sock.sendall(request.encode())
        received = sock.recv(1 << 16)
        assert received.startswith(b"HTTP/1.1 200")
        body = len(received) - received.index(b"\r\n\r\n") - 4
        while body < 2 << 20 and (chunk := sock.recv(1 << 16)):  # some of the body has been sent
            body += len(chunk)
    wait_until(lambda: FileAccessEvent.objects.filter(outcome="error").exists(), timeout=15)
    error = FileAccessEvent.objects.get(outcome="error")
    assert error.reason == "stopped_early"
    assert body <= error.bytes_sent < 64 << 20
