import logging
import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from controlplane.standalone import Standalone, StandaloneError, StandaloneOptions


class Command(BaseCommand):
    help = (
        "Run everything in one process: migrations, demo data, the control plane, the reference executor "
        "and a queue worker (SQLite by default; no Redis). First SIGINT/SIGTERM stops it cleanly; a second "
        "exits at once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="where to listen (default 127.0.0.1)")
        parser.add_argument(
            "--port", type=int, default=8000, help="port of the control plane (default 8000; 0: any)"
        )
        parser.add_argument(
            "--executor-port", type=int, default=0, help="port of the reference executor on 127.0.0.1 (any)"
        )
        parser.add_argument("--concurrency", type=int, help="worker threads (WORKER_CONCURRENCY)")
        parser.add_argument("--poll-seconds", type=float, default=0.2, help="queue poll interval (0.2)")
        parser.add_argument(
            "--grace-seconds", type=float, default=3.0, help="how long runs in hand may finish on stop (3)"
        )
        parser.add_argument("--no-seed", action="store_true", help="do not create the demo data")
        parser.add_argument(
            "--allow-demo-passwords", action="store_true", help="seed the demo accounts even with DEBUG off"
        )

    def handle(self, *args, **opts):
        if not settings.STANDALONE or hasattr(settings, "EVENTSTREAM_REDIS"):
            raise CommandError(
                "run it as `manage.py standalone`, which sets STANDALONE=true before the settings load "
                "(or set STANDALONE=true yourself): events must stay in this process, not go through Redis"
            )
        if opts["concurrency"] is not None and opts["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        for name in ("port", "executor_port"):
            if not 0 <= opts[name] <= 65535:
                raise CommandError(f"--{name.replace('_', '-')} must be a port number from 0 to 65535")
        standalone = Standalone(self._options(opts), out=self.stdout)
        standalone.install_signal_handlers()
        try:
            status = standalone.run()
        except StandaloneError as exc:
            raise CommandError(str(exc)) from None
        if standalone.lingering:
            # Handler threads of runs handed back, or a hung server: Python would wait for them at exit.
            logging.shutdown()
            sys.stdout.flush()
            os._exit(status)
        if status:
            raise CommandError("a part of the standalone process stopped unexpectedly: see the log above")

    @staticmethod
    def _options(opts) -> StandaloneOptions:
        return StandaloneOptions(
            host=opts["host"],
            port=opts["port"],
            executor_port=opts["executor_port"],
            concurrency=opts["concurrency"],
            poll_seconds=opts["poll_seconds"],
            grace_seconds=opts["grace_seconds"],
            seed=not opts["no_seed"],
            allow_demo_passwords=opts["allow_demo_passwords"],
            verbosity=opts["verbosity"],
        )
