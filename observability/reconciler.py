"""The reconciler: ``manage.py reconcile`` (and a thread of ``manage.py standalone``) runs the repair steps
in a loop. Several may run at once: every step takes the runs it repairs with ``SKIP LOCKED`` and writes
under its own lease (``runs.repair``)."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from core.shutdown import TwoSignalShutdown
from observability.agent_status import AgentStatusMonitor
from observability.services import heartbeat_record
from observability.traces import prune_spans
from runs.repair import Repair

logger = structlog.get_logger(__name__)

SPAN_BATCH = 5000
SPAN_BATCHES = 20  # 100,000 spans per retention pass (every 5 minutes): ~15,000 runs' worth


@dataclass
class ReconcilerOptions:
    interval_seconds: float = 5.0
    batch: int = 100
    retention_every_seconds: float = 300.0

    @classmethod
    def from_settings(cls, **overrides) -> ReconcilerOptions:
        values: dict[str, Any] = {
            "interval_seconds": settings.RECONCILE_INTERVAL_S,
            "batch": settings.RECONCILE_BATCH,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


@dataclass
class PassReport:
    """What one pass did, step by step (how many runs or rows each repaired)."""

    counts: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Reconciler(TwoSignalShutdown):
    STEPS = ("deadlines", "stalled", "stale_sync", "consistency", "retention", "agent_status")

    def __init__(self, *, options: ReconcilerOptions, owner: str | None = None) -> None:
        self.options = options
        self.owner = owner or f"reconciler:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.repair = Repair(owner=self.owner, limit=options.batch)
        self.monitor = AgentStatusMonitor()
        self.stopping = threading.Event()
        self.passes = 0
        self.last_pass_at: float | None = None
        self._last_retention = 0.0
        self.log = logger.bind(reconciler=self.owner)

    # --- lifecycle --------------------------------------------------------------------------------------
    def on_first_signal(self, name: str) -> None:
        self.log.info("reconciler_stopping", signal=name)

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        """Pass after pass until stopped; the first signal lets the pass in hand finish."""
        self.log.info("reconciler_started", interval=self.options.interval_seconds)
        try:
            while not self.stopping.is_set():
                self.run_once()
                self.stopping.wait(self.options.interval_seconds)
        finally:
            self.close()
            connection.close()
        self.log.info("reconciler_stopped", passes=self.passes)

    def run_once(self) -> PassReport:
        """One pass of every step (retention only every ``retention_every_seconds``)."""
        report = PassReport()
        for name in self.STEPS:
            if self.stopping.is_set() and self.passes:
                break
            if name == "retention" and not self._retention_due():
                continue
            self._run_step(name, report)
        self.passes += 1
        self.last_pass_at = time.time()
        heartbeat_record(owner=self.owner, passes=self.passes)
        level = self.log.info if report.total or report.failed else self.log.debug
        level("reconcile_pass", **report.counts, failed=report.failed)
        return report

    def _run_step(self, name: str, report: PassReport) -> None:
        """A step that fails (the database went away, a bug) is logged and skipped: the next pass retries."""
        close_old_connections()
        try:
            report.counts[name] = self._step(name)()
        except DatabaseError as exc:
            report.failed.append(name)
            self.log.warning("reconcile_step_database_error", step=name, error=str(exc)[:300])
            connection.close()
        except Exception:
            report.failed.append(name)
            self.log.exception("reconcile_step_failed", step=name)

    def _step(self, name: str) -> Callable[[], int]:
        """A step is a method of the agent-status monitor, the retention below, or of ``Repair``."""
        if name == "retention":
            return self.retention
        return getattr(self.monitor if name == "agent_status" else self.repair, name)

    def retention(self) -> int:
        """The runs' retention (``Repair.retention``: events, runs, queue entries), then the trace store's:
        spans past ``TRACE_RETENTION_DAYS``, in batches, at most ``SPAN_BATCHES`` of them per pass."""
        deleted = self.repair.retention()
        for _ in range(SPAN_BATCHES):
            pruned = prune_spans(batch=SPAN_BATCH)
            deleted += pruned
            if pruned < SPAN_BATCH or self.stopping.is_set():
                break
        return deleted

    def close(self) -> None:
        self.repair.close()
        self.monitor.close()

    def _retention_due(self) -> bool:
        if time.monotonic() - self._last_retention < self.options.retention_every_seconds:
            return False
        self._last_retention = time.monotonic()
        return True
