"""File-browser benchmark: downloads and directory pages through one web process (uvicorn, tracing on as in
production), over loopback, with PostgreSQL for the auth, the ACLs and the audit row of every access.

* **Download**: a 1 GiB file (in the page cache: this measures the web process, not the disk) read whole by a
  client that reads 1 MiB at a time, ``--downloads`` times: MB/s (10^6 bytes) each and their median, with the
  web process's CPU seconds per GiB; then a ``Range`` of its last 100 MB (206), the same way.
* **Directory page**: a folder of 10,000 files, the first page of 1,000 entries and a page from the middle
  (``after=`` a name half-way), ``--pages`` requests each on one keep-alive connection: p50/p99; then the same
  page built in-process (``files.browse.page``, no HTTP, no audit) for what the listing itself costs.

The user is a member with a ``read`` ACL on the root (not a superuser: the ACL checks are paid for).
Goals (issue 16): ≥ 500 MB/s, and the 1,000-entry page in < 50 ms p50.

    python bench/files.py [--downloads 3] [--pages 200]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # this folder holds bench/queue.py, which would shadow the standard library's queue

import argparse
import http.client
import json
import os
import shutil
import statistics
import tempfile
import time

from bench.common import (
    cpu_seconds,
    free_port,
    percentile,
    process_env,
    scratch_database,
    spawn,
    stop,
    wait_http,
    web_command,
)

GIB = 1 << 30
RANGE_BYTES = 100 * 1000 * 1000
ENTRIES = 10_000
PAGE = 1000
READ_SIZE = 1 << 20


def make_files(base: Path) -> None:
    block = os.urandom(1 << 20)
    with open(base / "big.bin", "wb") as out:
        for _ in range(GIB // len(block)):
            out.write(block)
    folder = base / "many"
    folder.mkdir()
    for n in range(ENTRIES):
        (folder / f"report-{n:05d}.csv").write_bytes(b"q,revenue\n")


def seed(base: Path) -> str:
    """A root over ``base``, a member who may read all of it, and their API token."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from files.models import FileACL, FileRoot, Permission
    from rbac.models import Role, RoleBinding

    root = FileRoot.objects.create(name="bench", path=str(base))
    user = get_user_model().objects.create_user("reader", password="bench-password")
    role = Role.objects.create(slug="bench-reader", name="Bench reader")
    RoleBinding.objects.create(role=role, user=user)
    FileACL.objects.create(root=root, path_prefix="", role=role, permission=Permission.READ)
    return Token.objects.create(user=user).key


def download(port: int, token: str, headers: dict[str, str] | None = None) -> tuple[int, int, float]:
    """(status, bytes read, seconds) for one download of big.bin on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    started = time.perf_counter()
    connection.request(
        "GET",
        "/api/files/bench/download?path=big.bin",
        headers={"Authorization": f"Token {token}", **(headers or {})},
    )
    response = connection.getresponse()
    received = 0
    while count := response.readinto(view):
        received += count
    elapsed = time.perf_counter() - started
    connection.close()
    return response.status, received, elapsed


def downloads(port: int, token: str, pid: int, times: int) -> None:
    rates, cpu = [], []
    for _ in range(times):
        cpu_before = cpu_seconds(pid)
        status, received, elapsed = download(port, token)
        if (status, received) != (200, GIB):
            raise SystemExit(f"download: {status}, {received} bytes")
        rates.append(received / elapsed / 1e6)
        cpu.append(cpu_seconds(pid) - cpu_before)
    listed = ", ".join(f"{rate:,.0f}" for rate in rates)
    print(
        f"download 1 GiB: {statistics.median(rates):,.0f} MB/s median ({listed}); "
        f"web process {statistics.median(cpu):.2f} CPU s per GiB (goal >= 500 MB/s)"
    )
    start = GIB - RANGE_BYTES
    status, received, elapsed = download(port, token, {"Range": f"bytes={start}-"})
    if (status, received) != (206, RANGE_BYTES):
        raise SystemExit(f"range: {status}, {received} bytes")
    print(f"range, last 100 MB: 206 in {elapsed * 1000:,.0f} ms, {received / elapsed / 1e6:,.0f} MB/s")


def pages(port: int, token: str, after: str, times: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    query = f"path=many&limit={PAGE}" + (f"&after={after}" if after else "")
    latencies = []
    for _ in range(times):
        started = time.perf_counter()
        connection.request(
            "GET", f"/api/files/bench/list?{query}", headers={"Authorization": f"Token {token}"}
        )
        response = connection.getresponse()
        body = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200 or len(json.loads(body)["entries"]) != PAGE:
            raise SystemExit(f"list: {response.status} {body[:200]!r}")
    connection.close()
    return sorted(latencies)


def in_process(base: Path, after: str, times: int) -> list[float]:
    from files import browse
    from files.selectors import Grants

    grants = Grants(everything=False, listable=((),), readable=((),))
    latencies = []
    for _ in range(times):
        started = time.perf_counter()
        result, _ = browse.page(str(base), ("many",), grants, after=after, limit=PAGE)
        latencies.append(time.perf_counter() - started)
        assert len(result["entries"]) == PAGE
    return sorted(latencies)


def report_pages(label: str, latencies: list[float]) -> None:
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    print(f"{label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


def chunk_bytes() -> int:
    from django.conf import settings

    return settings.FILES_CHUNK_BYTES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--downloads", type=int, default=3)
    parser.add_argument("--pages", type=int, default=200)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-files-"))
    try:
        make_files(base)
        with scratch_database("bench_files") as url:
            token = seed(base)
            port = free_port()
            web = spawn(web_command(port), process_env(url, TRACING="true"))
            try:
                wait_http(f"http://127.0.0.1:{port}/healthz")
                pages(port, token, "", 5)  # warm up: the connection, the token, the directory's inodes
                print(f"file browser, one web process, tracing on, chunks of {chunk_bytes()} bytes")
                downloads(port, token, web.pid, args.downloads)
                middle = f"report-{ENTRIES // 2:05d}.csv"
                report_pages(
                    f"list, first {PAGE} of {ENTRIES:,} entries over HTTP", pages(port, token, "", args.pages)
                )
                report_pages(
                    f"list, {PAGE} after the middle over HTTP", pages(port, token, middle, args.pages)
                )
                report_pages(f"list, first {PAGE} in-process (browse.page)", in_process(base, "", args.pages))
                print("goal: the 1,000-entry page p50 < 50 ms")
            finally:
                stop([web])
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
