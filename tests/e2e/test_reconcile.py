"""Every run reaches a terminal state, as real processes fail: web, workers, two reconcilers, the reference
executor, PostgreSQL and Redis."""

from __future__ import annotations

import sys

import pytest

from runs.models import Run, RunEvent
from tests.executor_support import wait_until
from tests.stack import spawn, start_worker

pytestmark = pytest.mark.slow

# Short clocks, so a dead worker's lease runs out and a quiet run counts as stalled within seconds.
FAST = {
    "QUEUE_LEASE_S": "2",
    "RUN_STALL_S": "1",
    "RUN_SYNC_STALE_S": "1",
    "RUN_EXECUTOR_GRACE_S": "4",
    "RECONCILE_INTERVAL_S": "0.3",
}


@pytest.fixture(autouse=True)
def _no_faults_left(stack):
    yield
    stack.executor.clear_faults()


@pytest.fixture
def reconcilers(stack, transactional_db):
    processes = [
        spawn(
            f"reconciler{i}",
            [sys.executable, "manage.py", "reconcile", "--owner", f"r{i}"],
            stack.log_dir,
            **FAST,
        )
        for i in (1, 2)
    ]
    yield processes
    for process in processes:
        process.stop()


@pytest.fixture
def fast_worker(stack, transactional_db):
    made = []

    def start():
        made.append(start_worker(stack.log_dir, "--concurrency", "4", **FAST))
        return made[-1]

    yield start
    for process in made:
        if process.process.poll() is None:
            process.stop()


def finished(run_id):
    return list(RunEvent.objects.filter(run_id=run_id, type="run.finished").values_list("data", flat=True))


def test_a_run_whose_worker_died_while_its_executor_went_silent_times_out_once(
    stack, fast_worker, reconcilers, app_on_executor, client_for
):
    app_on_executor("long", slug="long-orphan")
    worker = fast_worker()
    run_id = (
        client_for("rita")
        .post("/api/runs/", json={"app": "long-orphan", "input": {"seconds": 60}})
        .json()["id"]
    )
    wait_until(lambda: Run.objects.get(pk=run_id).last_seq >= 3, timeout=20, what="the run streaming")
    stack.executor.faults(latency={"seconds": 30, "path_prefix": f"/v1/runs/{run_id}"})
    worker.kill()
    run = wait_until(
        lambda: (r := Run.objects.get(pk=run_id)).is_terminal and r,
        timeout=40,
        what="the reconciler ending it",
    )
    assert (run.status, run.error_class) == ("timed_out", "executor_unreachable")
    assert len(finished(run_id)) == 1  # two reconcilers, one end


def test_runs_a_restarted_executor_forgot_fail_and_runs_it_knows_are_synced_and_finished(
    stack, fast_worker, reconcilers, app_on_executor, client_for
):
    app_on_executor("demo", slug="demo-forgotten")
    app_on_executor("long", slug="long-known")
    worker = fast_worker()
    client = client_for("fred")
    waiting = client.post("/api/runs/", json={"app": "demo-forgotten", "input": {"delay_ms": 1}}).json()["id"]
    wait_until(lambda: Run.objects.get(pk=waiting).status == "waiting_human", timeout=20, what="a question")
    stack.executor.faults(forget_runs=True)  # the executor restarted: it knows nothing of the waiting run
    known = client.post("/api/runs/", json={"app": "long-known", "input": {"seconds": 2}}).json()["id"]
    wait_until(lambda: Run.objects.get(pk=known).last_seq >= 3, timeout=20, what="the known run streaming")
    worker.kill()  # nobody follows the known run while it finishes on the executor
    for run_id, expected in ((waiting, ("failed", "executor_lost")), (known, ("succeeded", ""))):
        run = wait_until(
            lambda run_id=run_id: (r := Run.objects.get(pk=run_id)).is_terminal and r, timeout=40
        )
        assert (run.status, run.error_class) == expected
        assert len(finished(run_id)) == 1
    seqs = list(RunEvent.objects.filter(run_id=known).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert RunEvent.objects.filter(run_id=known, type="message.stop").exists()  # synced after the kill


def test_a_run_past_its_deadline_times_out_and_its_executor_is_told(
    stack, fast_worker, reconcilers, app_on_executor, client_for
):
    app = app_on_executor("long", slug="long-deadline")
    app.run_deadline_s = 3
    app.save()
    app_on_executor("instant", slug="instant-warmup")
    fast_worker()
    client = client_for("dora")
    warmup = client.post("/api/runs/", json={"app": "instant-warmup"}).json()["id"]
    wait_until(lambda: Run.objects.get(pk=warmup).status == "succeeded", timeout=30, what="the worker up")
    run_id = client.post("/api/runs/", json={"app": "long-deadline", "input": {"seconds": 60}}).json()["id"]
    wait_until(lambda: Run.objects.get(pk=run_id).last_seq >= 3, timeout=10, what="the run streaming")
    run = wait_until(
        lambda: (r := Run.objects.get(pk=run_id)).is_terminal and r, timeout=30, what="the deadline"
    )
    assert (run.status, run.error_class) == ("timed_out", "deadline_exceeded")
    stack.executor.wait_for_state(run_id, "cancelled")
    assert len(finished(run_id)) == 1
