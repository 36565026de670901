"""Publishes timestamped events to runs from its own process, as a worker would (for bench/runs.py).

python bench/publisher.py RATE_PER_RUN SECONDS RUN_ID [RUN_ID ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # this folder holds bench/queue.py, which would shadow the standard library's queue

import django

django.setup()

from django.db import transaction

from runs.events import NewEvent, append_events


def main() -> None:
    rate, seconds, run_ids = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
    interval = 1.0 / rate
    deadline = time.monotonic() + seconds
    tick = time.monotonic()
    sent = 0
    while time.monotonic() < deadline:
        for run_id in run_ids:
            with transaction.atomic():
                append_events(
                    run_id=run_id, events=[NewEvent("message.delta", {"text": "x" * 200, "t": time.time()})]
                )
        sent += 1
        tick += interval
        time.sleep(max(tick - time.monotonic(), 0))
    print(sent, flush=True)


if __name__ == "__main__":
    main()
