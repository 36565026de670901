"""Two-signal shutdown for long-running commands (``runworker``, ``reconcile``): the first SIGTERM or
SIGINT asks the loop to finish what it has in hand; the second exits at once (leases expire and other
processes take over)."""

from __future__ import annotations

import os
import signal


class TwoSignalShutdown:
    """Mixed into a loop object that has ``stop()``; ``on_first_signal`` says what it is stopping."""

    _signals = 0

    def stop(self) -> None:
        raise NotImplementedError

    def on_first_signal(self, name: str) -> None:
        """Log that the loop is stopping (override)."""

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals += 1
        if self._signals > 1:
            os._exit(128 + signum)  # the second signal: exit now
        self.on_first_signal(signal.Signals(signum).name)
        self.stop()
