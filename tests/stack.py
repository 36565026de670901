"""Real processes for end-to-end tests: the web app under uvicorn, `runworker`, and an SSE reader."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from django.db import connection

from agents.sse import iter_sse
from tests.executor_support import ROOT, free_port, stop_process, wait_until


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTOR_")}
    environ.update(
        DATABASE_URL=database_url(),
        LOG_LEVEL="WARNING",
        QUEUE_RETRY_BASE_S="0.1",
        QUEUE_RETRY_CAP_S="0.5",
        QUEUE_POLL_S="0.2",
        DEBUG="false",
        SECURE_COOKIES="false",
        TRACING="true",
    )
    environ.update(extra)
    return environ


@dataclass
class Process:
    name: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def spawn(name: str, command: list[str], log_dir: Path, **env: str) -> Process:
    log_path = log_dir / f"{name}-{free_port()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=process_env(**env), stdout=log, stderr=subprocess.STDOUT
        )
    return Process(name, process, log_path)


def start_web(log_dir: Path, *, port: int | None = None, **env: str) -> tuple[Process, str]:
    port = port or free_port()
    web = spawn(
        "web",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "controlplane.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        log_dir,
        **env,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if web.process.poll() is not None:
            raise AssertionError(f"web exited:\n{web.log()}")
        try:
            return requests.get(base + "/healthz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(up, timeout=30, what="the web process")
    return web, base


def start_worker(log_dir: Path, *args: str, **env: str) -> Process:
    return spawn(
        "worker", [sys.executable, "manage.py", "runworker", "--poll-seconds", "0.2", *args], log_dir, **env
    )


@dataclass
class SseReader:
    """Reads an SSE response on a thread, collecting ``(id, event, data)`` until closed or run.finished."""

    response: requests.Response
    events: list[dict[str, Any]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def start(self) -> SseReader:
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        try:
            for message in iter_sse(self.response.iter_content(chunk_size=None)):
                if message.event in {"stream-open", "keep-alive"}:
                    continue
                self.events.append(
                    {"id": message.id, "type": message.event, "data": json.loads(message.data)}
                )
                if message.event == "run.finished":
                    break
        except BaseException as exc:  # reported by wait_for
            self.error = exc
        finally:
            self.done.set()

    def close(self) -> None:
        # Closing the response waits for the reading thread's read to return (they share the buffer's lock),
        # that is for the stream's next keep-alive, ten seconds a stream: shutting the socket down first ends
        # that read at once.
        connection = self.response.raw.connection
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):  # the server has closed it already
                connection.sock.shutdown(socket.SHUT_RDWR)
        self.done.wait(timeout=5)
        self.response.close()

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]

    def seqs(self) -> list[int]:
        return [int(event["id"].rsplit(":", 1)[1]) for event in self.events]

    def wait_for(self, event_type: str, timeout: float = 20.0) -> dict[str, Any]:
        def seen():
            if self.error is not None:
                raise AssertionError(f"stream failed: {self.error!r}")
            return next((e for e in self.events if e["type"] == event_type), None)

        return wait_until(seen, timeout=timeout, what=f"{event_type} on the stream")
