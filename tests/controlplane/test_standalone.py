"""`manage.py standalone` as a new user runs it: a subprocess on a fresh SQLite file, no Redis, no executor
of its own — runs stream to their end, the admin and the API docs answer, a signal stops it cleanly."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command

from controlplane.standalone import StandaloneError, listen, url_host
from tests.executor_support import ROOT, free_port, wait_until
from tests.stack import SseReader

STOP_WITHIN_S = 10


@dataclass
class Standalone:
    process: subprocess.Popen
    base: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGINT) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"did not stop within {STOP_WITHIN_S}s:\n{self.log()}") from None


def start_standalone(database: Path, log_dir: Path, **env: str) -> Standalone:
    port = free_port()
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "GRIP_URL", "EVENTSTREAM_USE_REDIS", "STANDALONE"}
        and not k.startswith(("EXECUTOR_", "OPENAI_"))
    }
    environ.update(
        DATABASE_URL=f"sqlite:///{database}", DEBUG="true", LOG_LEVEL="warning", TRACING="true", **env
    )
    log_path = log_dir / f"standalone-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "standalone", "--port", str(port)],
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    running = Standalone(process, f"http://127.0.0.1:{port}", log_path)

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"standalone exited with {process.returncode}:\n{running.log()}")
        try:
            ready = requests.get(running.base + "/readyz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False
        # The banner is printed once the servers answer, so /readyz can answer before it is written.
        return ready and "Press Ctrl+C to stop." in running.log()

    try:
        wait_until(up, timeout=60, what="manage.py standalone")
    except BaseException:
        running.stop(signal.SIGKILL)
        raise
    return running


@pytest.fixture
def database(tmp_path) -> Path:
    return tmp_path / "standalone.sqlite3"


def token_for(base: str, username: str, password: str) -> str:
    response = requests.post(
        base + "/api/auth/token/", json={"username": username, "password": password}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["token"]


def start_streaming(base: str, token: str, app: str, run_input: dict | None = None) -> SseReader:
    response = requests.post(
        base + "/api/runs/start",
        json={"app": app, "input": run_input or {}},
        headers={"Authorization": f"Token {token}", "Accept": "text/event-stream"},
        stream=True,
        timeout=(5, 60),
    )
    assert response.status_code == 200, response.text
    return SseReader(response).start()


def answer_the_question(base: str, token: str, run_id: str) -> None:
    headers = {"Authorization": f"Token {token}"}

    def pending():
        listed = requests.get(base + "/api/human-loop/pending", headers=headers, timeout=10).json()
        return next((p for p in listed["results"] if p["run_id"] == run_id), None)

    question = wait_until(pending, timeout=20, what="the agent's question")
    reply = requests.post(
        base + "/api/human-loop/reply",
        json={"request_id": question["request_id"], "answer": "approve"},
        headers=headers,
        timeout=10,
    )
    assert reply.status_code == 200, reply.text


def sign_in(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    assert session.get(base + "/admin/login/", timeout=10).status_code == 200
    response = session.post(
        base + "/admin/login/?next=/admin/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert "sessionid" in session.cookies
    return session


def table_counts(database: Path) -> dict[str, int]:
    tables = [
        "auth_user",
        "rbac_department",
        "rbac_department_members",
        "rbac_role",
        "rbac_rolebinding",
        "agents_app",
        "agents_appgrant",
        "agents_promptversion",
        "agents_project",
        "agents_executor",
        "files_fileroot",
        "files_fileacl",
    ]
    with contextlib.closing(sqlite3.connect(database)) as db:
        return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables}


@pytest.mark.slow
def test_one_process_serves_runs_live_the_admin_and_the_docs_and_stops_on_sigint(database, tmp_path):
    standalone = start_standalone(database, tmp_path)
    try:
        banner = standalone.log()
        assert standalone.base in banner
        assert "admin / admin" in banner
        assert "alice / demo" in banner

        token = token_for(standalone.base, "alice", "demo")
        instant = start_streaming(standalone.base, token, "instant")
        finished = instant.wait_for("run.finished", timeout=30)
        assert finished["data"]["status"] == "succeeded"
        assert instant.types()[:2] == ["run.queued", "run.started"]
        assert instant.seqs() == list(range(1, len(instant.events) + 1))

        demo = start_streaming(standalone.base, token, "demo", {"message": "standalone", "delay_ms": 0})
        demo.wait_for("human_loop.request", timeout=30)
        demo_run = demo.response.headers["X-Run-ID"]
        answer_the_question(standalone.base, token, demo_run)
        assert demo.wait_for("run.finished", timeout=30)["data"]["status"] == "succeeded"
        assert "human_loop.reply" in demo.types()

        assert requests.get(standalone.base + "/static/admin/css/base.css", timeout=10).status_code == 200
        anonymous = requests.get(standalone.base + "/api/docs/", allow_redirects=False, timeout=10)
        assert anonymous.status_code == 302
        assert anonymous.headers["Location"].startswith("/accounts/login/")
        admin = sign_in(standalone.base, "admin", "admin")
        docs = admin.get(standalone.base + "/api/docs/", timeout=10)
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        assets = re.findall(r'(?:src|href)="(/[^"]+)"', docs.text)  # Swagger UI's files: from the project
        assert any("swagger-ui-bundle.js" in url for url in assets)
        assert all(admin.get(standalone.base + url, timeout=10).status_code == 200 for url in assets)
        assert admin.get(standalone.base + "/api/schema/", timeout=10).status_code == 200
    finally:
        status = standalone.stop(signal.SIGINT)
    assert status == 0, standalone.log()
    assert "Traceback" not in standalone.log()
    # Its spans reached the SQLite file (the batch exporter's last batch at exit): one trace for the run.
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT s.name, s.process FROM observability_span s JOIN runs_run r ON r.trace_id = s.trace_id"
            " WHERE r.id = ?",
            [demo_run.replace("-", "")],
        ).fetchall()
    names = {name for name, _ in rows}
    assert {"run.start", "queue.claim", "run.drive", "executor.start_run", "human.reply"} <= names, rows
    assert all(process.startswith("standalone@") for _, process in rows)


@pytest.mark.slow
def test_a_second_start_on_the_same_database_adds_no_demo_data_and_ignores_redis(database, tmp_path):
    first = start_standalone(database, tmp_path)
    assert first.stop(signal.SIGTERM) == 0, first.log()
    seeded = table_counts(database)
    assert seeded == {
        "auth_user": 3,
        "rbac_department": 3,
        "rbac_department_members": 2,
        "rbac_role": 4,
        "rbac_rolebinding": 4,
        "agents_app": 7,
        "agents_appgrant": 14,
        "agents_promptversion": 7,
        "agents_project": 1,
        "agents_executor": 1,
        "files_fileroot": 1,
        "files_fileacl": 2,
    }

    # REDIS_URL points nowhere: were it used, readiness and live delivery would fail.
    second = start_standalone(database, tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    try:
        assert "Seeded     nothing new" in second.log()
        assert "redis" not in requests.get(second.base + "/readyz", timeout=10).json()["checks"]
        token = token_for(second.base, "bob", "demo")
        stream = start_streaming(second.base, token, "instant")
        assert stream.wait_for("run.finished", timeout=30)["data"]["status"] == "succeeded"
    finally:
        status = second.stop(signal.SIGTERM)
    assert status == 0, second.log()
    assert table_counts(database) == seeded


def test_the_command_refuses_to_run_without_standalone_settings(settings):
    # Settings loaded without STANDALONE would send events through Redis: only manage.py sets it early.
    settings.STANDALONE = False
    with pytest.raises(CommandError, match="STANDALONE"):
        call_command("standalone")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "70000"], "--port must be a port number"),
        (["--executor-port", "-1"], "--executor-port must be a port number"),
        (["--concurrency", "0"], "--concurrency must be at least 1"),
    ],
)
def test_bad_options_are_refused_before_anything_starts(settings, argv, message):
    settings.STANDALONE = True
    if hasattr(settings, "EVENTSTREAM_REDIS"):
        del settings.EVENTSTREAM_REDIS
    with pytest.raises(CommandError, match=message):
        call_command("standalone", *argv)


def test_a_port_in_use_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StandaloneError, match=f"cannot listen on 127.0.0.1:{port}"):
            listen("127.0.0.1", port)


@pytest.mark.parametrize(
    ("host", "shown"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("::1", "[::1]"), ("cp", "cp")],
)
def test_the_printed_url_is_one_a_browser_on_this_machine_can_open(host, shown):
    assert url_host(host) == shown
