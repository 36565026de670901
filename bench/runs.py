"""End-to-end run benchmark: PostgreSQL, Redis, one web process (uvicorn), worker processes and the
reference executor, all on this machine.

1. Runs per second end to end (POST /api/runs/start → run.finished read on its SSE stream), p50/p99, with
   16 clients each starting a run as soon as its last one finished (closed loop: latency = clients / rate);
   then latency at fixed arrival rates below that capacity (open loop).
   Then the cost of tracing: the same, alternating tracing off and on (spans to the table), with the spans
   written per second and the Span table's growth per run.
2. One run streaming N message.delta events: events/s persisted and delivered to an SSE client.
3. Fan-out: SSE clients held open on one web process while a separate process publishes timestamped events
   (one run's channel; then runs × clients): delivery latency p50/p99, losses, server memory per stream.

    python bench/runs.py [--runs 400] [--concurrency 16] [--flood 20000] [--streams 1500]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # this folder holds bench/queue.py, which would shadow the standard library's queue

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import time
import uuid

import requests

from agents.sse import iter_sse
from bench.common import (
    PYTHON,
    cpu_seconds,
    free_port,
    percentile,
    postgres_cpu_seconds,
    process_env,
    rss_kib,
    scratch_database,
    spawn,
    stop,
    wait_http,
    web_command,
)

EXECUTOR_TOKEN = "bench-executor-token"


class Stack:
    def __init__(self, url: str, workers: int, reconcilers: int = 1, **env: str) -> None:
        self.url = url
        self.env = env
        self.worker_count, self.reconciler_count = workers, reconcilers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        executor_port = free_port()
        self.executor_url = f"http://127.0.0.1:{executor_port}"
        env = process_env(url)
        self.executor = spawn(
            [PYTHON, "-m", "executor", "--port", str(executor_port), "--token", EXECUTOR_TOKEN], env
        )
        self._start_services()
        wait_http(self.executor_url + "/v1/health", {"Authorization": f"Bearer {EXECUTOR_TOKEN}"})
        self.token = self._seed()
        self.headers = {"Authorization": f"Token {self.token}"}

    def _start_services(self) -> None:
        """The web process, the workers and the reconcilers (the executor lives as long as the stack)."""
        env = process_env(self.url, **self.env)
        self.web = spawn(web_command(self.port), env)
        self.workers = [
            spawn([PYTHON, "manage.py", "runworker", "--concurrency", "16"], env)
            for _ in range(self.worker_count)
        ]
        # The production topology has a reconciler beside the workers: its passes are part of the cost.
        self.reconcilers = [
            spawn([PYTHON, "manage.py", "reconcile"], env) for _ in range(self.reconciler_count)
        ]
        wait_http(self.base + "/healthz")

    def restart(self, **env: str) -> None:
        """The same stack and data with the services started again under ``env`` (TRACING=false...)."""
        stop([*self.reconcilers, *self.workers, self.web])
        self.env = env
        self._start_services()

    def _seed(self) -> str:
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        from agents.models import App, Executor

        executor = Executor.objects.create(
            name="bench", base_url=self.executor_url, token=EXECUTOR_TOKEN, read_timeout_s=60
        )
        apps = [
            App.objects.create(slug=playbook, name=playbook, playbook=playbook, executor=executor)
            for playbook in ("instant", "flood")
        ]
        user = get_user_model().objects.create_user("bench", password="bench-password")
        grant_through_the_tree(user, apps)
        return Token.objects.create(user=user).key

    def cpu(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "load generator": usage.ru_utime + usage.ru_stime,
            "web": cpu_seconds(self.web.pid),
            "workers": sum(cpu_seconds(w.pid) for w in self.workers),
            "reconcilers": sum(cpu_seconds(r.pid) for r in self.reconcilers),
            "executor": cpu_seconds(self.executor.pid),
            "postgres": postgres_cpu_seconds(),
        }

    def close(self) -> None:
        stop([*self.reconcilers, *self.workers, self.web, self.executor])


def stream_run(
    session: requests.Session, base: str, headers: dict, app: str, run_input: dict
) -> tuple[float, int]:
    """POST /api/runs/start and read until run.finished; returns (seconds, events seen)."""
    started = time.perf_counter()
    with session.post(
        f"{base}/api/runs/start",
        json={"app": app, "input": run_input},
        headers={**headers, "Accept": "text/event-stream"},
        stream=True,
        timeout=120,
    ) as response:
        response.raise_for_status()
        seen = 0
        for message in iter_sse(response.iter_content(chunk_size=None)):
            if time.perf_counter() - started > 120:
                raise SystemExit("no run.finished within 120 s")
            if message.event in {"stream-open", "keep-alive"}:
                continue
            seen += 1
            if message.event == "run.finished":
                if json.loads(message.data)["status"] != "succeeded":
                    raise SystemExit(f"run failed: {message.data}")
                return time.perf_counter() - started, seen
    raise SystemExit("stream ended before run.finished")


def start_request(token: str, *, keep_alive: bool) -> bytes:
    body = b'{"app":"instant","input":{}}'
    return (
        b"POST /api/runs/start HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token "
        + token.encode()
        + b"\r\nAccept: text/event-stream\r\nContent-Type: application/json\r\n"
        + (b"" if keep_alive else b"Connection: close\r\n")
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def grant_through_the_tree(user, apps) -> None:
    """Every start checks app.use: the benchmark user may start runs as a member would, through a binding
    on a department four levels above theirs, among 200 other people's bindings."""
    from django.contrib.auth import get_user_model

    from agents.models import AppGrant
    from rbac.models import Department, Role, RoleBinding

    departments = []
    for depth in range(5):
        parent = departments[-1] if departments else None
        departments.append(
            Department.objects.create(slug=f"bench-{depth}", name=f"Bench {depth}", parent=parent)
        )
    departments[-1].members.add(user)
    role = Role.objects.create(slug="bench", name="Bench")
    AppGrant.objects.bulk_create([AppGrant(role=role, action="app.use", app=app) for app in apps])
    RoleBinding.objects.create(role=role, department=departments[0], include_descendants=True)
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"other-{n}") for n in range(200)]
    )
    RoleBinding.objects.bulk_create([RoleBinding(role=role, user=other) for other in users])


async def read_run(reader: asyncio.StreamReader) -> None:
    """Read one start response until run.finished and the end of its chunked body (the connection can then
    carry the next request)."""
    seen, finished = b"", b""
    while not finished or not seen.endswith(b"\r\n0\r\n\r\n"):
        chunk = await reader.read(65536)
        if not chunk:
            raise SystemExit(f"stream ended before run.finished: {seen[-300:]!r}")
        seen = seen[-256:] + chunk
        if not finished and b"event: run.finished" in seen:
            finished = seen[seen.index(b"event: run.finished") :]
    if b'"status":"succeeded"' not in finished and b'"status": "succeeded"' not in finished:
        raise SystemExit(f"run did not succeed: {finished[:300]!r}")


async def closed_loop(stack: Stack, runs: int, concurrency: int) -> tuple[list[float], float]:
    """``concurrency`` clients on keep-alive connections, each starting a run as soon as its last one
    finished, until ``runs`` have finished; returns the latencies and the elapsed time. A raw asyncio
    client: the load generator shares the machine, so it must cost little (requests cost ~2 ms per run)."""
    request = start_request(stack.token, keep_alive=True)
    remaining = runs
    latencies: list[float] = []

    async def client() -> None:
        nonlocal remaining
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.port)
        try:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                writer.write(request)
                await read_run(reader)
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return sorted(latencies), time.perf_counter() - began


def runs_per_second(stack: Stack, runs: int, concurrency: int) -> None:
    asyncio.run(closed_loop(stack, concurrency * 2, concurrency))  # warm up connections and code paths
    cpu_before = stack.cpu()
    latencies, elapsed = asyncio.run(closed_loop(stack, runs, concurrency))
    cpu = {name: (after - cpu_before[name]) * 1000 / runs for name, after in stack.cpu().items()}
    print(
        f"  end to end (POST /api/runs/start → run.finished on SSE), instant playbook, {concurrency} clients:"
    )
    print(
        f"    {runs / elapsed:,.0f} runs/s; latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms ({runs} runs)"
    )
    print("    CPU per run: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in cpu.items()))


def span_table() -> tuple[int, int]:
    """(rows, bytes) of the Span table, its indexes and TOAST included."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), pg_total_relation_size('observability_span') FROM observability_span"
        )
        rows, size = cursor.fetchone()
    return rows, size


def settled_span_table(timeout: float = 20.0) -> tuple[int, int]:
    """The Span table once the batch exporters (TRACE_EXPORT_DELAY_MS: 2 s) wrote what they hold."""
    last, deadline = span_table(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(2.5)
        now = span_table()
        if now[0] == last[0]:
            return now
        last = now
    return last


def tracing_cost(stack: Stack, runs: int, concurrency: int, rounds: int) -> None:
    """Runs/s with tracing off and on (spans to the table), alternating on one stack and one database: the
    services are restarted with TRACING=false, then true, ``rounds`` times. With tracing on, the spans the
    exporters wrote per second of load, and the table's growth per run."""
    rates: dict[str, list[float]] = {"off": [], "on": []}
    cpu_ms: dict[str, list[float]] = {"off": [], "on": []}  # per run: web, workers, reconciler, PostgreSQL
    served = ("web", "workers", "reconcilers", "postgres")
    by_process: dict[str, dict[str, list[float]]] = {mode: {name: [] for name in served} for mode in rates}
    spans = elapsed_on = table_bytes = 0.0
    for _ in range(rounds):
        for mode in ("off", "on"):
            stack.restart(TRACING="true" if mode == "on" else "false")
            asyncio.run(closed_loop(stack, concurrency * 2, concurrency))  # warm up
            rows_before, bytes_before = settled_span_table()
            before = stack.cpu()
            _, elapsed = asyncio.run(closed_loop(stack, runs, concurrency))
            after = stack.cpu()
            rates[mode].append(runs / elapsed)
            for name in served:
                by_process[mode][name].append((after[name] - before[name]) * 1000 / runs)
            cpu_ms[mode].append(sum(by_process[mode][name][-1] for name in served))
            if mode == "on":
                rows_after, bytes_after = settled_span_table()
                spans += rows_after - rows_before
                table_bytes += bytes_after - bytes_before
                elapsed_on += elapsed
            print(
                f"    tracing {mode}: {runs / elapsed:,.1f} runs/s, {cpu_ms[mode][-1]:.2f} ms CPU per run",
                flush=True,
            )
    off, on = statistics.median(rates["off"]), statistics.median(rates["on"])
    total_runs = runs * rounds
    print(
        f"  tracing (to the Span table) on vs off, {rounds} alternating rounds of {runs} runs, "
        f"{concurrency} clients:"
    )
    print(f"    off {off:,.1f} runs/s, on {on:,.1f} runs/s (medians): on/off = {on / off:.3f}")
    cpu_off, cpu_on = statistics.median(cpu_ms["off"]), statistics.median(cpu_ms["on"])
    print(
        f"    CPU per run (web, workers, reconciler, PostgreSQL; medians): off {cpu_off:.2f} ms, "
        f"on {cpu_on:.2f} ms (+{(cpu_on / cpu_off - 1) * 100:.1f} %)"
    )
    split = {
        name: (statistics.median(by_process["off"][name]), statistics.median(by_process["on"][name]))
        for name in served
    }
    print(
        "    of which: "
        + ", ".join(f"{name} {off_ms:.2f} → {on_ms:.2f} ms" for name, (off_ms, on_ms) in split.items())
    )
    print(
        f"    spans written: {spans / elapsed_on:,.0f} spans/s under that load; per run "
        f"{spans / total_runs:.1f} rows, {table_bytes / total_runs:,.0f} bytes (table, indexes, TOAST)"
    )


async def open_loop_run(
    port: int,
    token: str,
    started: float,
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None,
) -> float:
    """POST /api/runs/start and read until run.finished; seconds from ``started`` (the time the run was due,
    so a late start counts against the system, not the generator). With ``idle`` (keep-alive), it takes an
    idle connection if there is one and puts it back after; without, it opens a connection for this run."""
    reader, writer = idle.pop() if idle else await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(start_request(token, keep_alive=idle is not None))
        await read_run(reader)
    except BaseException:
        writer.close()
        raise
    if idle is None:
        writer.close()
    else:
        idle.append((reader, writer))
    return time.perf_counter() - started


async def open_loop(stack: Stack, rate: float, seconds: float, *, keep_alive: bool) -> list[float]:
    """Start runs at a fixed rate whatever the answers (as independent users would), for ``seconds``."""
    count = int(rate * seconds)
    idle: list | None = [] if keep_alive else None
    began = time.perf_counter()
    tasks = []
    for i in range(count):
        due = began + i / rate
        await asyncio.sleep(max(due - time.perf_counter(), 0))
        tasks.append(asyncio.create_task(open_loop_run(stack.port, stack.token, due, idle)))
    latencies = sorted(await asyncio.gather(*tasks))
    for _, writer in idle or []:
        writer.close()
    return latencies


def latency_at_rates(stack: Stack, rates: list[float], seconds: float) -> None:
    print(f"  latency at a fixed arrival rate (open loop, {seconds:.0f} s each, POST → run.finished):")
    for keep_alive, how in (
        (False, "a new connection per run"),
        (True, "keep-alive connections, as behind a proxy"),
    ):
        print(f"    {how}:")
        for rate in rates:
            latencies = asyncio.run(open_loop(stack, rate, seconds, keep_alive=keep_alive))
            print(
                f"      {rate:>4.0f} runs/s offered: p50 {statistics.median(latencies) * 1000:.0f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms ({len(latencies)} runs)"
            )


def one_long_run(stack: Stack, count: int) -> None:
    from runs.models import Run

    seconds, seen = stream_run(requests.Session(), stack.base, stack.headers, "flood", {"count": count})
    run = Run.objects.order_by("-created_at").first()
    persisted = (run.finished_at - run.started_at).total_seconds() if run and run.started_at else float("nan")
    print(f"  one run streaming {count:,} message.delta events:")
    print(
        f"    delivered to an SSE client: {seen:,} events in {seconds:.2f} s = {seen / seconds:,.0f} events/s"
    )
    print(
        f"    persisted (run.started → run.finished stored): {run.last_seq:,} events in {persisted:.2f} s "
        f"= {run.last_seq / persisted:,.0f} events/s"
    )


# --- fan-out ---------------------------------------------------------------------------------------
STAMP = re.compile(rb'"t":([0-9.]+)')


async def hold_stream(
    port: int,
    path: str,
    token: str,
    last_id: str,
    latencies: list,
    counts: list,
    ready: asyncio.Event,
    opened: list,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        f"Accept: text/event-stream\r\nLast-Event-ID: {last_id}\r\n\r\n".encode()
    )
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    opened.append(1)
    buffer, seen = b"", 0
    try:
        while not ready.is_set() or True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            buffer += chunk
            *blocks, buffer = buffer.split(b"\n\n")
            now = time.time()
            for block in blocks:
                match = STAMP.search(block)
                if match:
                    latencies.append(now - float(match.group(1)))
                    seen += 1
    except asyncio.CancelledError:
        pass
    finally:
        counts.append(seen)
        writer.close()


async def fan_out(stack: Stack, channels: list[str], per_channel: int, rate: float, seconds: float) -> dict:
    latencies: list[float] = []
    counts: list[int] = []
    opened: list[int] = []
    ready = asyncio.Event()
    rss_before = rss_kib(stack.web.pid)
    tasks = []
    for run_id in channels:
        last = 0  # fresh runs: no history to replay
        for _ in range(per_channel):
            tasks.append(
                asyncio.create_task(
                    hold_stream(
                        stack.port,
                        f"/api/runs/{run_id}/events",
                        stack.token,
                        f"run-{run_id}:{last}",
                        latencies,
                        counts,
                        ready,
                        opened,
                    )
                )
            )
            await asyncio.sleep(0.002)
    deadline = time.monotonic() + 120
    while len(opened) < len(tasks) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    rss_open = rss_kib(stack.web.pid)
    publisher = await asyncio.create_subprocess_exec(
        PYTHON,
        "bench/publisher.py",
        str(rate),
        str(seconds),
        *channels,
        cwd=str(ROOT),
        env=process_env(stack.url, DJANGO_SETTINGS_MODULE="controlplane.settings"),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await publisher.communicate()
    sent = int(out.decode().strip() or 0)
    # A backlog is late, not lost: wait until deliveries stop (2 s without one, at most 60 s).
    quiet_since, seen = time.monotonic(), len(latencies)
    drain_deadline = time.monotonic() + 60
    while time.monotonic() - quiet_since < 2 and time.monotonic() < drain_deadline:
        await asyncio.sleep(0.2)
        if len(latencies) != seen:
            quiet_since, seen = time.monotonic(), len(latencies)
    ready.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    expected = sent * len(tasks)
    return {
        "streams": len(opened),
        "sent_per_channel": sent,
        "received": len(latencies),
        "expected": expected,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": percentile(latencies, 0.99) if latencies else float("nan"),
        "kib_per_stream": (rss_open - rss_before) / max(len(opened), 1),
    }


def new_running_runs(count: int) -> list[str]:
    """Runs the publisher process feeds (no queue entry: no worker takes them)."""
    from django.contrib.auth import get_user_model

    from agents.models import App
    from runs.models import Run, RunStatus, Session

    user = get_user_model().objects.get(username="bench")
    app = App.objects.get(slug="instant")
    session = Session.objects.create(user=user, app=app)
    runs = Run.objects.bulk_create(
        [
            Run(
                session=session,
                app=app,
                executor=app.executor,
                user=user,
                status=RunStatus.RUNNING,
                trace_id=uuid.uuid4().hex,
            )
            for _ in range(count)
        ]
    )
    return [str(r.pk) for r in runs]


def report_fan_out(title: str, result: dict) -> None:
    lost = result["expected"] - result["received"]
    print(
        f"  fan-out, {title}: {result['streams']:,} streams open, "
        f"{result['sent_per_channel']} events per channel"
    )
    print(
        f"    delivery latency p50 {result['p50'] * 1000:.0f} ms, p99 {result['p99'] * 1000:.0f} ms; "
        f"delivered {result['received']:,} of {result['expected']:,} (lost {lost:,}); "
        f"web memory {result['kib_per_stream']:.0f} KiB per stream"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reconcilers", type=int, default=1)
    parser.add_argument("--flood", type=int, default=20_000)
    parser.add_argument("--streams", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rates", default="5,10,20,25", help="offered runs/s for the open-loop latency part")
    parser.add_argument(
        "--parts",
        default="rate,tracing,latency,flood,fanout",
        help="comma-separated: rate, tracing, latency, flood, fanout",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the tracing part")
    args = parser.parse_args()
    with scratch_database("cp_bench_runs") as url:
        stack = Stack(url, args.workers, args.reconcilers)
        try:
            print(
                f"runs benchmark: PostgreSQL + Redis, 1 web process, {args.workers} workers, "
                f"{args.reconcilers} reconciler(s), "
                f"reference executor; services log at {os.environ.get('BENCH_LOG_LEVEL', 'WARNING')}"
            )
            parts = set(args.parts.split(","))
            if "rate" in parts:
                runs_per_second(stack, args.runs, args.concurrency)
            if "tracing" in parts:
                tracing_cost(stack, args.runs, args.concurrency, args.rounds)
            if "latency" in parts:
                latency_at_rates(stack, [float(r) for r in args.rates.split(",")], 10)
            if "flood" in parts:
                one_long_run(stack, args.flood)
            if "fanout" in parts:
                one = new_running_runs(1)
                report_fan_out(
                    "one run's channel, 10 events/s",
                    asyncio.run(fan_out(stack, one, args.streams, 10, args.seconds)),
                )
                many = new_running_runs(200)
                report_fan_out(
                    "200 runs × 5 clients, 1 event/s per run",
                    asyncio.run(fan_out(stack, many, 5, 1, args.seconds)),
                )
        finally:
            stack.close()


if __name__ == "__main__":
    main()
