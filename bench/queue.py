"""Queue benchmark: claims+completions per second with 2 worker processes, and enqueue→start latency.

Runs on PostgreSQL (DATABASE_URL, default the local server) in a scratch database it creates and drops.
Baseline measured in the same run: the per-row Django ORM worker (select_for_update + two saves).
Usage: python bench/queue.py [--entries 10000] [--workers 2] [--latency-samples 300] [--baseline-entries 1500]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this file is named like the standard
# library's `queue` module (which psycopg and urllib3 import): put the project root there instead.
ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import time
import uuid

from bench.common import percentile, process_env, scratch_database

_scratch_url = ""


def worker_env(**extra: str) -> dict[str, str]:
    return process_env(_scratch_url, **extra)


def start_workers(count: int, handler: str, **env: str) -> list[subprocess.Popen]:
    command = [
        sys.executable,
        "manage.py",
        "runworker",
        "--handler",
        handler,
        "--concurrency",
        "4",
        "--batch",
        "200",
        "--poll-seconds",
        "1",
    ]
    return [subprocess.Popen(command, cwd=ROOT, env=worker_env(**env)) for _ in range(count)]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=60)


def count(sql: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def wait_listeners(expected: int) -> None:
    while count("SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN run_queue'") < expected:
        time.sleep(0.05)


def reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE run_queue_queueentry")


def throughput(entries: int, workers: int) -> float:
    from run_queue import services

    reset()
    processes = start_workers(workers, "bench.handlers.noop")
    wait_listeners(workers)
    started = time.perf_counter()
    services.entries_enqueue(run_ids=[uuid.uuid4() for _ in range(entries)])
    enqueued = time.perf_counter()
    while count("SELECT count(*) FROM run_queue_queueentry WHERE state = 'done'") < entries:
        time.sleep(0.05)
    elapsed = time.perf_counter() - enqueued
    stop(processes)
    print(f"  enqueue of {entries} in one transaction: {enqueued - started:.2f} s")
    return entries / elapsed


def latency(samples: int, workers: int) -> list[float]:
    from run_queue import services

    reset()
    stamp_dir = tempfile.mkdtemp(prefix="bench-stamps-")
    processes = start_workers(workers, "bench.handlers.stamp", BENCH_STAMP_DIR=stamp_dir)
    wait_listeners(workers)
    enqueued: dict[str, float] = {}
    for _ in range(samples):
        run_id = uuid.uuid4()
        services.entry_enqueue(run_id=run_id)
        enqueued[str(run_id)] = time.time()
        time.sleep(0.01)
    while count("SELECT count(*) FROM run_queue_queueentry WHERE state = 'done'") < samples:
        time.sleep(0.05)
    stop(processes)
    started = {}
    for path in Path(stamp_dir).glob("*.txt"):
        for line in path.read_text().splitlines():
            run_id, moment = line.split()
            started[run_id] = float(moment)
    return sorted(max(started[key] - enqueued[key], 0.0) for key in enqueued)


def naive_baseline(entries: int, workers: int) -> float:
    from run_queue import services

    reset()
    services.entries_enqueue(run_ids=[uuid.uuid4() for _ in range(entries)])
    count("SELECT 1")
    began = time.perf_counter()
    processes = [
        subprocess.Popen([sys.executable, "bench/naive_worker.py"], cwd=ROOT, env=worker_env())
        for _ in range(workers)
    ]
    for process in processes:
        if process.wait(timeout=600) != 0:
            raise SystemExit("baseline worker failed")
    elapsed = time.perf_counter() - began
    if count("SELECT count(*) FROM run_queue_queueentry WHERE state = 'done'") != entries:
        raise SystemExit("baseline left entries unfinished")
    return entries / elapsed


def main() -> None:
    global _scratch_url
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--baseline-entries", type=int, default=1_500)
    args = parser.parse_args()
    with scratch_database("cp_bench_queue") as url:
        _scratch_url = url
        print(f"queue benchmark: PostgreSQL, {os.cpu_count()} cores, {args.workers} worker processes")
        rate = throughput(args.entries, args.workers)
        print(f"  claims+completions: {rate:,.0f} runs/s ({args.entries} no-op runs)")
        lat = latency(args.latency_samples, args.workers)
        print(
            f"  enqueue→start latency, idle workers: p50 {statistics.median(lat) * 1000:.1f} ms, "
            f"p99 {percentile(lat, 0.99) * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms ({len(lat)} samples)"
        )
        naive = naive_baseline(args.baseline_entries, args.workers)
        print(f"  baseline, per-row Django ORM worker: {naive:,.0f} runs/s ({args.baseline_entries} runs)")
        print(f"  ratio ours / baseline: {rate / naive:.1f}x")


if __name__ == "__main__":
    main()
