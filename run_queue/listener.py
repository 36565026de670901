"""LISTEN for enqueue notifications so an idle worker wakes within milliseconds instead of polling."""

from __future__ import annotations

import threading

import psycopg
import structlog
from django.db import connections

from run_queue.services import CHANNEL

logger = structlog.get_logger(__name__)


def _conninfo() -> dict:
    db = connections["default"].settings_dict
    params = {
        "dbname": db["NAME"],
        "user": db["USER"],
        "password": db["PASSWORD"],
        "host": db["HOST"],
        "port": db["PORT"],
    }
    return {key: value for key, value in params.items() if value}


class Listener(threading.Thread):
    """Sets ``notified`` and ``wakeup`` on every notification, and once after each (re)connect to catch up
    on what was enqueued while it was away. Reconnects with backoff, so a PostgreSQL restart only delays
    wake-ups."""

    def __init__(
        self, *, wakeup: threading.Event, notified: threading.Event, stopping: threading.Event
    ) -> None:
        super().__init__(name="queue-listener", daemon=True)
        self.wakeup = wakeup
        self.notified = notified
        self.stopping = stopping
        self.connected = threading.Event()

    def run(self) -> None:
        delay = 0.1
        while not self.stopping.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                self.connected.clear()
                logger.warning("queue_listener_disconnected", error=str(exc)[:200], retry_in_s=delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, 5.0)
            else:
                delay = 0.1

    def _listen(self) -> None:
        with psycopg.connect(**_conninfo(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.connected.set()
            self._notify()
            while not self.stopping.is_set():
                for _ in conn.notifies(timeout=0.5, stop_after=1):
                    self._notify()

    def _notify(self) -> None:
        self.notified.set()
        self.wakeup.set()
