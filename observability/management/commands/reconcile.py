import logging

from django.core.management.base import BaseCommand, CommandError

from observability.reconciler import Reconciler, ReconcilerOptions


class Command(BaseCommand):
    help = (
        "Repair runs whose worker or executor died, enforce deadlines, keep the queue consistent, prune old "
        "runs and poll executors for their agents' status (first SIGTERM/SIGINT: finish the pass in hand; "
        "second: exit). Safe to run as replicas."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one pass of every step, then exit")
        parser.add_argument("--interval", type=float, help="seconds between passes (RECONCILE_INTERVAL_S)")
        parser.add_argument("--batch", type=int, help="runs each step handles per pass (RECONCILE_BATCH)")
        parser.add_argument("--owner", help="name in leases and logs (default reconciler:host:pid:random)")

    def handle(self, *args, **opts):
        if opts["verbosity"] >= 2:
            level = logging.DEBUG if opts["verbosity"] > 2 else logging.INFO
            for name in ("observability", "runs"):
                logging.getLogger(name).setLevel(level)
        if opts["interval"] is not None and opts["interval"] <= 0:
            raise CommandError("--interval must be positive")
        if opts["batch"] is not None and opts["batch"] < 1:
            raise CommandError("--batch must be at least 1")
        options = ReconcilerOptions.from_settings(interval_seconds=opts["interval"], batch=opts["batch"])
        reconciler = Reconciler(options=options, owner=opts["owner"])
        if opts["once"]:
            report = reconciler.run_once()
            reconciler.close()
            counts = " ".join(f"{name}={count}" for name, count in report.counts.items())
            self.stdout.write(f"reconciled {report.total} ({counts})")
            if report.failed:
                raise CommandError(f"steps failed: {', '.join(report.failed)}")
            return
        reconciler.install_signal_handlers()
        reconciler.run()
