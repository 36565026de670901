"""Handlers for benchmark workers (``runworker --handler bench.handlers.<name>``)."""

import os
import time

from run_queue.outcomes import Outcome

_stamps = None


def noop(entry) -> Outcome:
    return Outcome.done()


def stamp(entry) -> Outcome:
    """Record when the handler started (wall clock), for enqueue→start latency."""
    global _stamps
    if _stamps is None:
        _stamps = open(os.path.join(os.environ["BENCH_STAMP_DIR"], f"{os.getpid()}.txt"), "a")  # noqa: SIM115
    _stamps.write(f"{entry.run_id} {time.time()}\n")
    _stamps.flush()
    return Outcome.done()
