"""urllib3 pools for a plugin's outbound request: opened on one checked address, and bounded in time.

``pinned_pool`` connects to ``address`` itself — no name is resolved again between the check and the
connection — while TLS sends ``host`` as SNI and verifies the certificate against ``host``. Its connections
report their sockets to a ``Watchdog``, which shuts them down when the call's time is up: socket timeouts
bound each single wait, the watchdog bounds their sum (a server trickling header lines or body bytes, each
well within the read timeout, cannot hold the call past its deadline).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

import certifi
from django.conf import settings
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection

from agents.plugins.net_policy import IPAddress


class Watchdog:
    """Shuts every socket it watches down ``seconds`` from now, unless cancelled first."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def pinned_pool(
    scheme: str, address: IPAddress, port: int, host: str, watchdog: Watchdog
) -> HTTPConnectionPool:
    """A one-connection pool to ``address``:``port`` that never retries and never resolves ``host``."""
    if scheme == "http":
        return _Pool(str(address), port, maxsize=1, retries=False, watchdog=watchdog)
    return _TLSPool(
        str(address),
        port,
        maxsize=1,
        retries=False,
        watchdog=watchdog,
        cert_reqs="CERT_REQUIRED",
        ca_certs=settings.HTTP_FETCH_CA_BUNDLE or certifi.where(),
        server_hostname=host,  # SNI names the host, not the address connected to
        assert_hostname=host,  # and the certificate must be the host's
    )


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to interrupt
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedHTTPConnection(HTTPConnection):
    def __init__(self, *args: Any, watchdog: Watchdog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watchdog = watchdog

    def connect(self) -> None:
        super().connect()
        self._watchdog.watch(self.sock)


class _WatchedHTTPSConnection(HTTPSConnection):
    def __init__(self, *args: Any, watchdog: Watchdog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watchdog = watchdog

    def connect(self) -> None:
        super().connect()  # self.sock is now the TLS socket (the plain one it wrapped is detached)
        self._watchdog.watch(self.sock)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection
