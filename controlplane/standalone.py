"""``manage.py standalone``: the whole product in one process, for the demo and for trying it out.

Four parts run in threads of this process: the control plane (uvicorn serving ``controlplane.asgi``), the
reference executor (its ASGI app on a second uvicorn server bound to 127.0.0.1 only), a queue worker and
the reconciler.
Events reach browsers through django-eventstream's in-process listeners, so no Redis is needed (``manage.py``
sets ``STANDALONE`` before settings load, which makes them ignore ``REDIS_URL``).

The main thread only waits. On the first SIGINT/SIGTERM it stops the parts in order: the worker first
(it finishes the runs in hand within the grace period while both servers still answer), then the executor
and the web server. A second signal exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog
import uvicorn
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.management import call_command
from django.db import connections

from agents.models import DEFAULT_EXECUTOR_NAME
from agents.services import executor_sync
from controlplane.demo import APPS, USERS, seed_demo
from executor import config as executor_config
from executor.app import ExecutorApp
from executor.http import ApiError
from files.services import roots_sync_from_settings
from observability.reconciler import Reconciler, ReconcilerOptions
from rbac.services import DemoPasswordRefused
from run_queue import handlers
from run_queue.worker import Worker, WorkerOptions

logger = structlog.get_logger(__name__)

SERVER_GRACE_S = 3  # how long requests in flight may finish on stop
STREAMS_CLOSE_AFTER_S = 1.0  # then event streams (which never end by themselves) are disconnected
STARTUP_TIMEOUT_S = 30.0


class Output(Protocol):
    def write(self, text: str, /) -> object: ...

    def flush(self) -> None: ...


class StandaloneError(Exception):
    """Start-up cannot go on; the message says why and what to do."""


@dataclass
class StandaloneOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    executor_port: int = 0  # 0: any free port (the executor is only reached from inside this process)
    concurrency: int | None = None
    poll_seconds: float = 0.2  # SQLite has no LISTEN/NOTIFY: polling this often keeps start-up latency low
    grace_seconds: float = 3.0
    seed: bool = True
    allow_demo_passwords: bool = False
    verbosity: int = 1


def listen(host: str, port: int) -> socket.socket:
    """A bound socket (uvicorn listens on it), so a port in use fails here with a clear message."""
    bare = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in bare else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bare, port))
    except OSError as exc:
        sock.close()
        raise StandaloneError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def url_host(host: str) -> str:
    """How to reach ``host`` from a browser on this machine."""
    bare = host.strip("[]")
    if bare in {"", "0.0.0.0"}:  # noqa: S104 -- naming the wildcard, not binding to it
        return "127.0.0.1"
    if bare == "::":
        return "[::1]"
    return f"[{bare}]" if ":" in bare else bare


class EmbeddedExecutor:
    """The reference executor (``executor.app.ExecutorApp``) on its own uvicorn server on 127.0.0.1, with a
    fresh random token every start. It reads the same ``EXECUTOR_*`` / ``OPENAI_*`` variables as
    ``python -m executor`` (keep-alive, retention, faults, the openai agent)."""

    def __init__(self, port: int) -> None:
        arguments = argparse.Namespace(
            token=secrets.token_urlsafe(32), admin_token=secrets.token_urlsafe(32), keepalive_s=None
        )
        try:
            self.config = executor_config.load(arguments)
            self.app = ExecutorApp(self.config)
        except executor_config.ConfigError as exc:
            raise StandaloneError(f"reference executor: {exc}") from None
        except ApiError as exc:
            raise StandaloneError(
                f"reference executor: EXECUTOR_FAULTS: {exc.message} {exc.detail}"
            ) from None
        self.socket = listen("127.0.0.1", port)
        self.port = self.socket.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                lifespan="on",
                log_config=None,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=SERVER_GRACE_S,
            )
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.app.begin_shutdown()  # forget every run, which ends the open event streams at once
        self.server.should_exit = True


class StreamingServer(uvicorn.Server):
    """uvicorn that, on shutdown, disconnects the connections still open after a moment — event streams,
    which never end by themselves. Django then ends each response as if its browser had left (no task is
    cancelled mid-write), and an EventSource reconnects with Last-Event-ID once the server is back."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # closes idle keep-alive connections; a busy one closes after its response
        deadline = time.monotonic() + STREAMS_CLOSE_AFTER_S
        while self.server_state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(self.server_state.connections):
            connection.transport.close()
        await super().shutdown(sockets)


@dataclass
class Parts:
    web: StreamingServer
    web_socket: socket.socket
    worker: Worker
    reconciler: Reconciler
    executor: EmbeddedExecutor | None
    threads: dict[str, threading.Thread] = field(default_factory=dict)

    @property
    def port(self) -> int:
        """The control plane's port (the one asked for, or the one the system chose for --port 0)."""
        return self.web_socket.getsockname()[1]


class Standalone:
    def __init__(self, options: StandaloneOptions, *, out: Output = sys.stdout) -> None:
        self.options = options
        self.out = out
        self.stopping = threading.Event()
        self.parts: Parts | None = None
        self.seeded: list[str] = []
        self._signals = 0

    # --- signals ----------------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals += 1
        if self._signals > 1:
            os._exit(128 + signum)  # the second signal: leave now
        self.out.write("\nStopping (press Ctrl+C again to exit at once)...\n")
        self.out.flush()
        self.stop()

    def stop(self) -> None:
        self.stopping.set()

    # --- the run loop -----------------------------------------------------------------------------------
    def run(self) -> int:
        """Prepare, serve until stopped, stop in order. Returns the exit status: 0 after a signal, 1 when a
        part stopped on its own."""
        self.prepare()
        if self.stopping.is_set():
            return 0
        assert self.parts is not None
        self.start(self.parts)
        failed = self.wait_until_stopped(self.parts)
        self.shut_down(self.parts)
        return 1 if failed else 0

    def prepare(self) -> None:
        """Migrate, seed, bind both ports and build the parts; nothing is served yet."""
        call_command("migrate", interactive=False, verbosity=max(self.options.verbosity - 1, 0))
        if settings.FILE_ROOTS:
            roots_sync_from_settings()
        if self.options.seed:
            try:
                self.seeded = seed_demo(allow_demo_passwords=self.options.allow_demo_passwords).created
            except DemoPasswordRefused as exc:
                raise StandaloneError(f"{exc} (--allow-demo-passwords, or --no-seed)") from None
        web_socket = listen(self.options.host, self.options.port)
        if not settings.TOOL_GATEWAY_URL:
            # The embedded executor reaches the tool gateway on this machine (an external one needs
            # TOOL_GATEWAY_URL to say how it reaches this process).
            settings.TOOL_GATEWAY_URL = f"http://127.0.0.1:{web_socket.getsockname()[1]}"
        executor = None if settings.EXECUTOR_URL else EmbeddedExecutor(self.options.executor_port)
        if executor is not None:
            # Runs of apps that name no executor go to "default": point it at this process's executor.
            executor_sync(
                name=DEFAULT_EXECUTOR_NAME,
                wanted={"base_url": executor.base_url, "token": executor.config.token},
            )
        connections.close_all()  # the parts open their own, one per thread
        self.parts = Parts(
            web=self._web_server(),
            web_socket=web_socket,
            worker=self._worker(),
            reconciler=Reconciler(options=ReconcilerOptions.from_settings()),
            executor=executor,
        )

    def _web_server(self) -> StreamingServer:
        from controlplane.asgi import application

        # Static files (the admin's CSS) straight from the apps, as runserver serves them; no collectstatic.
        app = ASGIStaticFilesHandler(application)
        config = uvicorn.Config(
            app,
            # The peer address is the client: uvicorn would otherwise believe X-Forwarded-For from any
            # local process; our throttles read it themselves, from TRUSTED_PROXIES only.
            proxy_headers=False,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=SERVER_GRACE_S,
        )
        return StreamingServer(config)

    def _worker(self) -> Worker:
        options = WorkerOptions.from_settings(
            concurrency=self.options.concurrency,
            poll_seconds=self.options.poll_seconds,
            grace_seconds=self.options.grace_seconds,
        )
        return Worker(handler=handlers.load(), options=options)

    def start(self, parts: Parts) -> None:
        targets: dict[str, tuple[Callable[..., None], list[socket.socket] | None]] = {
            "web": (parts.web.run, [parts.web_socket]),
            "worker": (parts.worker.run, None),
            "reconciler": (parts.reconciler.run, None),
        }
        if parts.executor is not None:
            targets["executor"] = (parts.executor.server.run, [parts.executor.socket])
        for name, (target, sockets) in targets.items():
            kwargs = {"sockets": sockets} if sockets is not None else {}
            thread = threading.Thread(target=target, kwargs=kwargs, name=f"standalone-{name}", daemon=True)
            parts.threads[name] = thread
            thread.start()
        self._wait_for_servers(parts)
        self.print_banner(parts)
        logger.info("standalone_started", host=self.options.host, port=parts.port)

    def _wait_for_servers(self, parts: Parts) -> None:
        servers = [parts.web] + ([parts.executor.server] if parts.executor else [])
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not all(server.started for server in servers):
            if self._stopped_parts(parts) or time.monotonic() > deadline:
                self.shut_down(parts)
                raise StandaloneError("a server did not start: see the log above")
            time.sleep(0.02)

    def wait_until_stopped(self, parts: Parts) -> bool:
        """Until a signal (returns False) or until a part stops by itself (True: something failed)."""
        while not self.stopping.wait(0.2):
            stopped = self._stopped_parts(parts)
            if stopped:
                logger.error("standalone_part_stopped", parts=stopped)
                return True
        return False

    @staticmethod
    def _stopped_parts(parts: Parts) -> list[str]:
        return [name for name, thread in parts.threads.items() if not thread.is_alive()]

    def shut_down(self, parts: Parts) -> None:
        parts.reconciler.stop()
        parts.worker.stop()
        self._join(parts, "worker", self.options.grace_seconds + 10)
        self._join(parts, "reconciler", 10)
        if parts.executor is not None:
            parts.executor.stop()
        parts.web.should_exit = True
        for name in ("executor", "web"):
            self._join(parts, name, SERVER_GRACE_S + 5)
        logger.info("standalone_stopped")

    @staticmethod
    def _join(parts: Parts, name: str, timeout: float) -> None:
        thread = parts.threads.get(name)
        if thread is not None:
            thread.join(timeout)

    @property
    def lingering(self) -> bool:
        """Threads are still busy (runs handed back after the grace period, or a server that hangs): the
        caller should end the process without waiting for them."""
        if self.parts is None:
            return False
        return bool(self.parts.worker.abandoned) or any(t.is_alive() for t in self.parts.threads.values())

    # --- output -----------------------------------------------------------------------------------------
    def print_banner(self, parts: Parts) -> None:
        base = f"http://{url_host(self.options.host)}:{parts.port}"
        database = settings.DATABASES["default"]
        executor = (
            f"the reference executor, inside this process ({parts.executor.base_url})"
            if parts.executor
            else f"EXECUTOR_URL ({settings.EXECUTOR_URL})"
        )
        lines = [
            "",
            f"Agent control plane (standalone) on {base}/",
            "",
            f"  Portal     {base}/   (start here: sign in, pick an agent in the app store)",
            f"  Admin      {base}/admin/",
            f"  API docs   {base}/api/docs/   (once signed in)",
            *self._demo_lines(),
            f"  Database   {database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']}",
            f"  Executor   {executor}",
            "",
            "Press Ctrl+C to stop.",
            "",
        ]
        self.out.write("\n".join(lines))
        self.out.flush()

    def _demo_lines(self) -> list[str]:
        if not self.options.seed:
            return ["  Sign in    with your own accounts (no demo data: --no-seed)"]
        sign_ins = " | ".join(
            f"{u.username} / {u.password}" + (" (superuser)" if u.superuser else f" ({u.department})")
            for u in USERS
        )
        return [
            f"  Sign in    {sign_ins}",
            f"  Apps       {', '.join(app.slug for app in APPS)}",
            f"  Seeded     {', '.join(self.seeded) if self.seeded else 'nothing new'}",
        ]
