import logging
import os
import sys

from django.core.management.base import BaseCommand, CommandError

from core import tracing
from run_queue import handlers
from run_queue.worker import Worker, WorkerOptions


class Command(BaseCommand):
    help = "Claim queued runs and drive them (first SIGTERM/SIGINT: finish the runs in hand; second: exit)."

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, help="handler threads (WORKER_CONCURRENCY)")
        parser.add_argument("--batch", type=int, help="entries claimed per statement (WORKER_BATCH)")
        parser.add_argument("--worker-id", help="name in leases and logs (default host:pid:random)")
        parser.add_argument("--max-runs", type=int, help="exit after settling this many runs")
        parser.add_argument("--once", action="store_true", help="claim and run one batch, then exit")
        parser.add_argument("--lease-seconds", type=float, help="lease length (QUEUE_LEASE_S)")
        parser.add_argument("--grace-seconds", type=float, help="shutdown grace (WORKER_SHUTDOWN_GRACE_S)")
        parser.add_argument("--poll-seconds", type=float, help="fallback poll interval (QUEUE_POLL_S)")
        parser.add_argument(
            "--handler", help="dotted path of a handler (default: the one the runs app registers)"
        )

    def handle(self, *args, **opts):
        if opts["verbosity"] >= 2:
            logging.getLogger("run_queue").setLevel(logging.DEBUG if opts["verbosity"] > 2 else logging.INFO)
        try:
            handler = handlers.load(opts["handler"])
        except (LookupError, ImportError) as exc:
            raise CommandError(str(exc)) from exc
        for name in ("concurrency", "batch", "max_runs"):
            if opts[name] is not None and opts[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
        options = WorkerOptions.from_settings(
            concurrency=opts["concurrency"],
            batch=opts["batch"],
            max_runs=opts["max_runs"],
            lease_seconds=opts["lease_seconds"],
            grace_seconds=opts["grace_seconds"],
            poll_seconds=opts["poll_seconds"],
        )
        worker = Worker(handler=handler, options=options, worker_id=opts["worker_id"])
        if opts["once"]:
            handled = worker.step()
            self.stdout.write(f"handled {handled}")
            return
        worker.install_signal_handlers()
        worker.run()
        if worker.abandoned:
            # Their leases are released; Python would otherwise wait for the abandoned threads at exit
            # (and skip the tracer's own flush at exit: spans still queued are exported first).
            tracing.flush()
            logging.shutdown()
            sys.stdout.flush()
            os._exit(0)
