"""The executor process: refuses to start without a token; on SIGTERM ends open streams and exits promptly."""

import os
import signal
import subprocess
import sys
import threading
import time

from agents.executor_client import ExecutorError
from tests.executor_support import ROOT, start_executor, wait_until


def test_it_refuses_to_start_without_a_token():
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EXECUTOR_")}
    result = subprocess.run(
        [sys.executable, "-m", "executor", "--port", "1"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "EXECUTOR_TOKEN" in result.stderr


def test_malformed_settings_stop_it_naming_the_variable():
    environ = dict(os.environ, EXECUTOR_TOKEN="t", EXECUTOR_KEEPALIVE_S="often")
    result = subprocess.run(
        [sys.executable, "-m", "executor", "--port", "1"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "EXECUTOR_KEEPALIVE_S" in result.stderr


def test_sigterm_ends_open_streams_and_the_process_exits_promptly(tmp_path):
    executor = start_executor(tmp_path)
    try:
        run_id = executor.start_run("long")
        outcome = {}

        def follow():
            try:
                list(executor.client().iter_events(run_id))
            except ExecutorError as exc:
                outcome["error"] = exc

        follower = threading.Thread(target=follow)
        follower.start()
        wait_until(lambda: executor.run_status(run_id)["last_seq"] >= 2, what="the run to tick")
        started = time.monotonic()
        executor.process.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal it caught: exit status -SIGTERM.
        assert executor.process.wait(timeout=10) in {0, -signal.SIGTERM}
        follower.join(timeout=10)
        assert time.monotonic() - started < 2.5  # well inside the 3 s backstop for open connections
        assert outcome["error"].error_class == "network"
        assert "Exception in ASGI application" not in executor.log()
    finally:
        if executor.process.poll() is None:
            executor.process.kill()
            executor.process.wait(timeout=10)
        for client in executor.clients:
            client.close()
