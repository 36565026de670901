"""How fast the reference executor streams one run to the executor client, and answers a human.

Starts ``python -m executor`` on a free port, runs the ``flood`` playbook and reads its events with
``agents.executor_client`` (SSE parsing, JSON decoding and seq checks included), then times human-in-the-loop
round trips on the ``demo`` playbook (answer sent → ``human_loop.reply`` read from the stream). Prints the
figures; exits non-zero below the target the design needs (5,000 events/s through one run).

    python bench/executor_stream.py [--events 100000] [--runs 3] [--answers 20]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Replace this folder on sys.path before anything imports the standard library's queue (urllib3 does): it
# holds bench/queue.py, which would shadow it.
sys.path[0] = str(ROOT)

import argparse
import logging
import os
import socket
import subprocess
import time
import uuid

import requests
import structlog

from agents.executor_client import ExecutorClient, ExecutorConfig

TARGET_EVENTS_PER_S = 5000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_executor(token: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    environ = dict(os.environ, EXECUTOR_TOKEN=token, LOG_LEVEL="warning")
    command = [sys.executable, "-m", "executor", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=environ)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/v1/health", headers={"Authorization": f"Bearer {token}"}, timeout=1).ok:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the executor did not become healthy")


def one_run(client: ExecutorClient, count: int) -> tuple[int, float]:
    run_id = str(uuid.uuid4())
    started = time.perf_counter()
    client.start_run(
        run_id=run_id,
        app="bench",
        agent={"kind": "scripted", "playbook": "flood"},
        prompt={"version": 1, "text": ""},
        input={"count": count},
    )
    received = sum(1 for _ in client.iter_events(run_id))
    return received, time.perf_counter() - started


def answer_round_trip(client: ExecutorClient) -> float:
    run_id = str(uuid.uuid4())
    client.start_run(
        run_id=run_id,
        app="bench",
        agent={"kind": "scripted", "playbook": "demo"},
        prompt={"version": 1, "text": ""},
        input={"delay_ms": 0},
    )
    sent = 0.0
    for event in client.iter_events(run_id):
        if event.type == "human_loop.request":
            sent = time.perf_counter()
            client.send_input(run_id, request_id=event.data["request_id"], answer="approve")
        elif event.type == "human_loop.reply":
            return time.perf_counter() - sent
    raise SystemExit("the demo run finished without a human_loop.reply")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--answers", type=int, default=20)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    token = uuid.uuid4().hex
    process, url = start_executor(token)
    try:
        client = ExecutorClient(ExecutorConfig("bench", url, token))
        rates = []
        for _ in range(args.runs):
            received, seconds = one_run(client, args.events)
            rates.append(received / seconds)
            print(f"flood: {received} events in {seconds:.2f} s = {received / seconds:,.0f} events/s")
        trips = sorted(answer_round_trip(client) for _ in range(args.answers))
    finally:
        process.terminate()
        process.wait(timeout=10)
    best, median = max(rates), sorted(rates)[len(rates) // 2]
    print(
        f"executor stream, one run: median {median:,.0f} events/s, best {best:,.0f} "
        f"({median / TARGET_EVENTS_PER_S:.1f}x the {TARGET_EVENTS_PER_S:,} events/s target)"
    )
    print(
        f"human-in-the-loop round trip (answer sent -> reply streamed), {len(trips)} runs: "
        f"p50 {trips[len(trips) // 2] * 1000:.1f} ms, max {trips[-1] * 1000:.1f} ms"
    )
    return 0 if median >= TARGET_EVENTS_PER_S else 1


if __name__ == "__main__":
    sys.exit(main())
