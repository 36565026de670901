"""Tool-gateway benchmark: a no-op plugin (``echo``) called through ``POST /api/runs/{id}/tools/echo`` on one
web process (uvicorn, tracing on as in production), PostgreSQL and Redis on this machine.

For 1 and for 16 concurrent callers (each with its own keep-alive connection, rotating over runs of its own so
no per-run limit is reached), for ``--seconds`` each:

* calls per second;
* the client's round trip p50/p99;
* a bare ``GET /healthz`` round trip, the floor any request pays here;
* the gateway's overhead per call — the call's whole time in the gateway (``PluginCall.duration_ms``: token,
  run row, rate limits, schema, the pool's hop, the audit row's fields) minus the plugin's own time
  (``plugin_ms``) — p50/p99, and the round trip minus the plugin's time (adds HTTP, middleware, the audit's
  insert and the response) at 1 caller, where no queueing hides in it.

Both with ``Tool-Call-Id`` (the executor emits the events: the reference executor's path) and without it
(the gateway appends ``tool.call`` and ``tool.result`` to the run's stream: two more transactions).
Goal (issue 15): overhead p50 < 5 ms.

    python bench/gateway.py [--seconds 8] [--callers 16]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # this folder holds bench/queue.py, which would shadow the standard library's queue

import argparse
import statistics
import threading
import time
from datetime import timedelta

import requests

from bench.common import (
    free_port,
    percentile,
    process_env,
    scratch_database,
    spawn,
    stop,
    wait_http,
    web_command,
)

RUNS_PER_CALLER = 8


def seed(callers: int) -> list[list[tuple[str, str]]]:
    """Running runs of an app declaring echo, and a token for each, grouped per caller."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from agents.models import App, Executor
    from agents.plugins import tokens
    from runs.models import Run, RunStatus, Session

    executor = Executor.objects.create(
        name="bench", base_url="http://127.0.0.1:9", token="bench-executor-token"
    )
    app = App.objects.create(
        slug="tools", name="tools", playbook="tools", executor=executor, plugins=["echo"]
    )
    user = get_user_model().objects.create_user("bench", password="bench-password")
    expires = timezone.now() + timedelta(hours=1)
    groups = []
    for _ in range(callers):
        group = []
        for _ in range(RUNS_PER_CALLER):
            session = Session.objects.create(user=user, app=app)
            run = Run.objects.create(
                session=session, app=app, user=user, executor=executor, input={}, status=RunStatus.RUNNING
            )
            group.append((str(run.pk), tokens.mint(run_id=run.pk, plugins=["echo"], expires_at=expires)))
        groups.append(group)
    return groups


def load(base: str, groups: list[list[tuple[str, str]]], seconds: float, call_ids: bool) -> dict:
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def caller(group: list[tuple[str, str]]) -> None:
        session = requests.Session()
        mine, bad, n = [], [], 0
        while time.perf_counter() < stop_at:
            run_id, token = group[n % len(group)]
            n += 1
            headers = {"Authorization": f"Bearer {token}"}
            if call_ids:
                headers["Tool-Call-Id"] = f"call_{n}"
            started = time.perf_counter()
            response = session.post(
                f"{base}/api/runs/{run_id}/tools/echo", json={"message": "ping"}, headers=headers, timeout=30
            )
            elapsed = time.perf_counter() - started
            if response.status_code == 200:
                mine.append(elapsed)
            else:
                bad.append(response.status_code)
        with lock:
            latencies.extend(mine)
            failures.extend(bad)

    threads = [threading.Thread(target=caller, args=(group,)) for group in groups]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return {"calls": len(latencies), "failed": failures, "wall": wall, "latencies": sorted(latencies)}


def healthz_p50(base: str) -> float:
    """What any request costs here (HTTP, the middleware, no view work): the floor under a round trip."""
    session = requests.Session()
    times = []
    for _ in range(300):
        started = time.perf_counter()
        session.get(f"{base}/healthz", timeout=10)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def audit_overheads(since_id: int) -> tuple[list[float], list[float]]:
    """(gateway minus plugin, plugin) in ms, for the successful calls recorded after ``since_id``."""
    from gateway.models import PluginCall

    rows = PluginCall.objects.filter(id__gt=since_id, outcome="ok").values_list("duration_ms", "plugin_ms")
    overhead = sorted(duration - (plugin or 0) for duration, plugin in rows)
    plugin = sorted(plugin or 0 for _, plugin in rows)
    return overhead, plugin


def last_id() -> int:
    from gateway.models import PluginCall

    return PluginCall.objects.order_by("-id").values_list("id", flat=True).first() or 0


def report(label: str, result: dict, overhead: list[float], plugin: list[float]) -> None:
    lat = result["latencies"]
    rate = result["calls"] / result["wall"]
    plugin_p50 = statistics.median(plugin) if plugin else 0.0
    print(
        f"{label}: {rate:,.0f} calls/s; round trip p50 {percentile(lat, 0.5) * 1000:.2f} ms, "
        f"p99 {percentile(lat, 0.99) * 1000:.2f} ms; "
        f"gateway overhead p50 {percentile(overhead, 0.5):.2f} ms, "
        f"p99 {percentile(overhead, 0.99):.2f} ms (plugin itself p50 {plugin_p50:.3f} ms); "
        f"round trip minus plugin p50 {percentile(lat, 0.5) * 1000 - plugin_p50:.2f} ms; "
        f"non-200: {len(result['failed'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--callers", type=int, default=16)
    args = parser.parse_args()
    with scratch_database("bench_gateway") as url:
        groups = seed(args.callers)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = process_env(url, PLUGINS_ENABLED="echo", TOOL_GATEWAY_RUN_RATE="1000000", TRACING="true")
        web = spawn(web_command(port), env)
        try:
            wait_http(base + "/healthz")
            load(base, groups[:1], 1.0, True)  # warm up: connections, caches, the pool's threads
            print(f"tool gateway, no-op plugin (echo), {args.seconds:g} s per figure, tracing on")
            print(f"baseline: a bare GET /healthz round trip p50 {healthz_p50(base):.2f} ms (1 caller)")
            for callers in (1, args.callers):
                for call_ids in (True, False):
                    since = last_id()
                    result = load(base, groups[:callers], args.seconds, call_ids)
                    overhead, plugin = audit_overheads(since)
                    mode = "executor emits events" if call_ids else "gateway emits events"
                    report(f"{callers:>2} caller(s), {mode}", result, overhead, plugin)
        finally:
            stop([web])


if __name__ == "__main__":
    main()
