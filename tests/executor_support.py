"""A real reference-executor process for tests, and tiny HTTP servers standing in for its peers.

``start_executor`` runs ``python -m executor`` on a free port and waits for ``/v1/health``; the fixtures in
``tests/executor/conftest.py`` and ``tests/agents/conftest.py`` share one process per directory and clear its
faults after every test.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from agents.executor_client import ExecutorClient, ExecutorConfig

ROOT = Path(__file__).resolve().parents[1]
KEEPALIVE_S = 0.2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class ExecutorProcess:
    base_url: str
    token: str
    admin_token: str
    process: subprocess.Popen
    log_path: Path
    clients: list[ExecutorClient] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def http(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {
            "Authorization": f"Bearer {self.token if token is None else token}",
            **kwargs.pop("headers", {}),
        }
        return requests.request(method, self.base_url + path, headers=headers, timeout=10, **kwargs)

    def faults(self, **rules: Any) -> dict[str, Any]:
        response = self.http("POST", "/v1/admin/faults", token=self.admin_token, json=rules)
        assert response.status_code == 200, response.text
        return response.json()

    def clear_faults(self) -> None:
        response = self.http("DELETE", "/v1/admin/faults", token=self.admin_token)
        assert response.status_code == 200, response.text

    def client(self, **overrides: Any) -> ExecutorClient:
        options = {"name": "test", "base_url": self.base_url, "token": self.token, "read_timeout_s": 5.0}
        options.update(overrides)
        client = ExecutorClient(ExecutorConfig(**options), backoff_factor=0.01)
        self.clients.append(client)
        return client

    def reset(self) -> None:
        """Clear injected faults and close the clients a test made."""
        self.clear_faults()
        while self.clients:
            self.clients.pop().close()

    def start_run(self, playbook: str = "instant", run_input: dict | None = None, **fields: Any) -> str:
        body = start_body(playbook=playbook, run_input=run_input, **fields)
        response = self.http("POST", "/v1/runs", json=body)
        assert response.status_code == 201, response.text
        return body["run_id"]

    def run_status(self, run_id: str) -> dict[str, Any]:
        response = self.http("GET", f"/v1/runs/{run_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_state(self, run_id: str, *states: str, timeout: float = 10.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.run_status(run_id)
            return status if status["state"] in states else None

        return wait_until(reached, timeout=timeout, what=f"run {run_id} to reach {states}")


def start_body(*, playbook: str = "instant", run_input: dict | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "run_id": str(uuid.uuid4()),
        "app": "test-app",
        "agent": {"kind": "scripted", "playbook": playbook},
        "prompt": {"version": 1, "text": "You are a test agent."},
        "input": {"delay_ms": 0} if run_input is None else run_input,
    }
    body.update(fields)
    return body


def start_executor(log_dir: Path, *, env: dict[str, str] | None = None) -> ExecutorProcess:
    port = free_port()
    token, admin_token = f"tok-{uuid.uuid4().hex}", f"adm-{uuid.uuid4().hex}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EXECUTOR_", "OPENAI_"))}
    environ.update({"EXECUTOR_TOKEN": token, "EXECUTOR_ADMIN_TOKEN": admin_token, "LOG_LEVEL": "info"})
    environ.update(env or {})  # a test may override the tokens too
    log_path = log_dir / f"executor-{port}.log"
    command = [sys.executable, "-m", "executor", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--keepalive-s", str(KEEPALIVE_S)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT)
    executor = ExecutorProcess(f"http://127.0.0.1:{port}", token, admin_token, process, log_path)

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the executor exited with {process.returncode}:\n{executor.log()}")
        try:
            return executor.http("GET", "/v1/health").status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_until(healthy, timeout=20, what="the executor's /v1/health")
    except BaseException:
        stop_process(process)
        raise
    return executor


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def executor_fixture(tmp_path_factory: Any) -> Iterator[ExecutorProcess]:
    executor = start_executor(tmp_path_factory.mktemp("executor"))
    try:
        yield executor
    finally:
        stop_process(executor.process)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class RecordingServer:
    """A threaded HTTP server on a free port that records each request and answers with ``respond``."""

    respond: Callable[[Recorded], tuple[int, Any]]
    requests: list[Recorded] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> RecordingServer:
        recording = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.answer("GET")

            def do_POST(self) -> None:
                self.answer("POST")

            def answer(self, method: str) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Recorded(method, self.path, dict(self.headers), json.loads(raw) if raw else None)
                recording.requests.append(request)
                status, payload = recording.respond(request)
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
