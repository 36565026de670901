"""Servers on loopback for the http_fetch tests: a page server (http.server) with routes for every kind of
answer, and a raw socket server for the misbehaving ones (silent, trickling, endless, lying, cut short)."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class PageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.address_family = family
        super().__init__((host, port), Pages)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.seen: list[dict] = []  # one entry per request: method, path, headers (names lower case)
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class Pages(BaseHTTPRequestHandler):
    server: PageServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.seen.append({"method": self.command, "path": self.path, "headers": headers})
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        route, _, rest = parts.path.strip("/").partition("/")
        handler = getattr(self, f"route_{route.replace('-', '_')}", None)
        if handler is None:
            self.answer(404, b"no such page", "text/plain")
        else:
            handler(rest, query, headers)

    def answer(self, status: int, body: bytes, content_type: str | None, **extra: str) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for name, value in extra.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def route_text(self, rest, query, headers):
        self.answer(200, "héllo wörld".encode(), "text/plain; charset=utf-8")

    def route_latin1(self, rest, query, headers):
        self.answer(200, b"caf\xe9", 'text/html; charset="ISO-8859-1"')

    def route_charset(self, rest, query, headers):
        # /charset/<name>: a UTF-8 body declared in any charset
        self.answer(200, "ü".encode(), f"text/plain; charset={rest}")

    def route_bad_utf8(self, rest, query, headers):
        self.answer(200, b"ok\xff\xfe", "text/plain")

    def route_json(self, rest, query, headers):
        self.answer(200, '{"name": "é"}'.encode(), "application/json")

    def route_problem(self, rest, query, headers):
        self.answer(400, b'{"title": "bad"}', "application/problem+json")

    def route_binary(self, rest, query, headers):
        self.answer(200, bytes(range(256)), "image/png")

    def route_untyped(self, rest, query, headers):
        self.answer(200, b"\x00\x01text", None)

    def route_status(self, rest, query, headers):
        self.answer(int(rest), f"status {rest}".encode(), "text/plain")

    def route_redirect(self, rest, query, headers):
        status = int(query.get("status", "302"))
        self.answer(status, b"moved", "text/plain", Location=query["to"])

    def route_redirect_nowhere(self, rest, query, headers):
        self.answer(302, b"no location", "text/plain")

    def route_loop(self, rest, query, headers):
        self.answer(302, b"", "text/plain", Location="/loop")

    def route_chain(self, rest, query, headers):
        left = int(rest)
        if left == 0:
            self.answer(200, b"end of chain", "text/plain")
        else:
            self.answer(302, b"", "text/plain", Location=f"/chain/{left - 1}")

    def route_echo(self, rest, query, headers):
        body = json.dumps({"path": self.path, "headers": headers}).encode()
        self.answer(200, body, "application/json")

    def route_bytes(self, rest, query, headers):
        self.answer(200, b"a" * int(rest), "application/octet-stream")

    def route_meta(self, rest, query, headers):
        self.answer(
            200,
            b"meta",
            "text/plain",
            ETag='"v1"',
            Last_Modified="Wed, 02 Dec 2026 12:00:00 GMT",
            Content_Language="en",
            Set_Cookie="session=secret",
            X_Internal="do not show",
        )

    def route_long_etag(self, rest, query, headers):
        self.answer(200, b"", "text/plain", ETag="x" * 5000)

    def route_gzip(self, rest, query, headers):
        # gzip although the request asked for identity; /gzip/<n>: n decoded bytes of zeros
        body = gzip.compress(b"0" * int(rest))
        self.answer(200, body, "text/plain", Content_Encoding="gzip")


class RawServer:
    """Accepts connections and hands each to ``behaviour(conn, stop)`` on its own thread; counts them."""

    def __init__(self, behaviour: Callable[[socket.socket, threading.Event], None], host: str = "127.0.0.1"):
        self.behaviour = behaviour
        self.stopping = threading.Event()
        self.connections = 0
        self.listener = socket.create_server((host, 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                read_request(conn)
                self.behaviour(conn, self.stopping)
            except OSError:
                pass  # the client gave up, as the tests mean it to

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.listener.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    conn.settimeout(5)
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def silent(conn, stop):
    stop.wait(10)


def trickle(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
    while not stop.wait(0.05):
        conn.sendall(b"x")


def trickle_then_hang(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
    for _ in range(28):  # 1.4 s of bytes, then nothing
        if stop.wait(0.05):
            return
        conn.sendall(b"x")
    stop.wait(10)


def trickle_headers(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while not stop.wait(0.1):
        conn.sendall(b"X-Slow: 1\r\n")


def endless(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
    while not stop.is_set():
        conn.sendall(b"y" * 65536)


def endless_chunked(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
    while not stop.is_set():
        conn.sendall(b"10000\r\n" + b"z" * 65536 + b"\r\n")


def lying_length(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000000\r\n\r\n")
    stop.wait(10)


def cut_short(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly ten b")


def not_http(conn, stop):
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA and a server certificate it signed for ``localhost`` and ``fetch.test`` (openssl's CLI), and a
    self-signed one for ``localhost`` that no bundle trusts."""
    paths = {
        name: directory / f"{name}.pem"
        for name in ("ca", "ca_key", "server", "server_key", "self", "self_key")
    }
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subprocess.run(
        ["openssl", "req", "-x509", *ec, "-keyout", paths["ca_key"], "-out", paths["ca"], "-days", "2",
         "-subj", "/CN=http_fetch test CA"],
        check=True, capture_output=True,
    )  # fmt: skip
    csr = directory / "server.csr"
    subprocess.run(
        ["openssl", "req", *ec, "-keyout", paths["server_key"], "-out", csr, "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    extensions = directory / "server.ext"
    extensions.write_text(
        "subjectAltName=DNS:localhost,DNS:fetch.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    subprocess.run(
        ["openssl", "x509", "-req", "-in", csr, "-CA", paths["ca"], "-CAkey", paths["ca_key"],
         "-CAcreateserial", "-out", paths["server"], "-days", "2", "-extfile", extensions],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "req", "-x509", *ec, "-keyout", paths["self_key"], "-out", paths["self"], "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return paths


def tls_context(certificate: Path, key: Path, server_names: list[str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    return context


def full_backlog() -> tuple[socket.socket, socket.socket]:
    """A listener whose accept queue is full: a further connect hangs (the SYN is dropped)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname(), timeout=2)
    time.sleep(0.05)
    return listener, filler
