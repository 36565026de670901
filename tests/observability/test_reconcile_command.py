"""``manage.py reconcile``: one pass with --once, a loop that repairs while it runs, and a clean stop on the
first SIGTERM."""

import signal
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from observability.reconciler import Reconciler, ReconcilerOptions
from runs.models import Run, RunStatus
from tests.executor_support import ROOT, wait_until
from tests.factories import AppFactory
from tests.stack import process_env


@pytest.fixture
def overdue_run(api_as, member, transactional_db):
    AppFactory(slug="overdue")
    run_id = api_as(member).post("/api/runs/", {"app": "overdue"}, format="json").json()["id"]
    Run.objects.filter(pk=run_id).update(deadline=timezone.now() - timedelta(seconds=1))
    return run_id


def test_once_runs_every_step_and_says_what_it_did(overdue_run):
    out = StringIO()
    call_command("reconcile", "--once", stdout=out)
    assert out.getvalue().startswith("reconciled 1 (deadlines=1 stalled=0 stale_sync=0 consistency=0")
    assert Run.objects.get(pk=overdue_run).status == RunStatus.TIMED_OUT


def test_a_failing_step_is_reported_and_the_others_still_run(overdue_run, monkeypatch):
    reconciler = Reconciler(options=ReconcilerOptions())

    def broken():
        raise RuntimeError("a bug in one step")

    monkeypatch.setattr(reconciler.repair, "stalled", broken)
    report = reconciler.run_once()
    reconciler.repair.close()
    assert report.failed == ["stalled"]
    assert report.counts["deadlines"] == 1


@pytest.mark.parametrize("args", [["--interval", "0"], ["--batch", "0"]])
def test_bad_arguments_are_refused(args, db):
    with pytest.raises(CommandError):
        call_command("reconcile", "--once", *args)


def test_the_loop_repairs_while_it_runs_and_the_first_sigterm_stops_it(overdue_run, tmp_path):
    log = (tmp_path / "reconciler.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "reconcile", "--interval", "0.2"],
        cwd=ROOT,
        env=process_env(LOG_LEVEL="INFO"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: Run.objects.get(pk=overdue_run).status == RunStatus.TIMED_OUT, timeout=20)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    output = (tmp_path / "reconciler.log").read_text()
    assert "reconciler_stopping" in output
    assert "reconciler_stopped" in output
