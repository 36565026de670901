"""Real worker processes: exactly-once under contention, crash recovery, graceful and forced shutdown."""

import signal
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from run_queue import services
from run_queue.claims import claim_batch
from run_queue.handlers import FunctionHandler
from run_queue.models import QueueEntry, State
from tests.run_queue.conftest import logged, states, wait_for
from tests.run_queue.handlers import record, slow

pytestmark = pytest.mark.slow


def test_eight_threads_and_three_processes_handle_2000_entries_exactly_once(
    log_table, make_worker, spawn_worker, monkeypatch
):
    monkeypatch.setenv("TEST_HANDLER_SLEEP", "0.003")
    workers = [
        spawn_worker(
            "--handler",
            "tests.run_queue.handlers.slow",
            "--concurrency",
            "4",
            "--batch",
            "20",
            "--poll-seconds",
            "0.05",
            TEST_HANDLER_SLEEP="0.003",
        )
        for _ in range(3)
    ]
    wait_for(lambda: _listeners() == 3, message="three workers listening")
    services.entries_enqueue(run_ids=[uuid.uuid4() for _ in range(2000)])

    def drain():
        worker = make_worker(FunctionHandler(slow), batch=10)
        idle_rounds = 0
        while idle_rounds < 20:
            idle_rounds = 0 if worker.step() else idle_rounds + 1
            time.sleep(0.005 * idle_rounds)
        connection.close()

    threads = [threading.Thread(target=drain) for _ in range(8)]
    for thread in threads:
        thread.start()
    wait_for(
        lambda: not QueueEntry.objects.exclude(state=State.DONE).exists(),
        timeout=120,
        message="every entry done",
    )
    for thread in threads:
        thread.join()
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, worker.stdout.read()
    handled = logged()
    assert len(handled) == 2000
    assert len(set(handled)) == 2000
    assert len(set(logged("worker"))) >= 3  # the test's threads and the processes all took a share


def test_killed_worker_s_runs_are_taken_over_after_lease_expiry(log_table, make_worker, spawn_worker):
    entries = [services.entry_enqueue(run_id=uuid.uuid4()) for _ in range(2)]
    victim = spawn_worker(
        "--handler", "tests.run_queue.handlers.slow", "--lease-seconds", "1", "--concurrency", "2"
    )
    wait_for(lambda: len(logged()) == 2, message="the victim started both runs")
    stale = list(QueueEntry.objects.filter(state=State.LEASED))
    assert len(stale) == 2
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)

    rescuer = make_worker(FunctionHandler(record))
    wait_for(
        lambda: rescuer.step() or all(s == State.DONE for s in states().values()),
        timeout=15,
        message="the rescuer took over",
    )
    while rescuer.step():
        pass
    assert set(states().values()) == {State.DONE}
    for entry in entries:
        assert QueueEntry.objects.get(pk=entry.pk).attempts == 2
    # The killed worker's late writes, made with its old tokens, change nothing.
    assert services.entries_complete(entries=stale) == set()
    assert services.entry_retry(entry=stale[0], error_class="late", detail="") is None
    assert QueueEntry.objects.filter(last_error_class="late").count() == 0


def test_sigterm_finishes_the_runs_in_hand_and_exits_zero(log_table, spawn_worker):
    for _ in range(2):
        services.entry_enqueue(run_id=uuid.uuid4())
    worker = spawn_worker(
        "--handler", "tests.run_queue.handlers.slow", "--concurrency", "2", TEST_HANDLER_SLEEP="1.5"
    )
    wait_for(lambda: len(logged()) == 2, message="both runs started")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0, worker.stdout.read()
    assert set(states().values()) == {State.DONE}


def test_sigterm_past_the_grace_period_hands_the_runs_back(log_table, spawn_worker):
    entry = services.entry_enqueue(run_id=uuid.uuid4())
    worker = spawn_worker(
        "--handler", "tests.run_queue.handlers.slow", "--grace-seconds", "0.5", TEST_HANDLER_SLEEP="30"
    )
    wait_for(lambda: len(logged()) == 1, message="the run started")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0, worker.stdout.read()
    released = QueueEntry.objects.get(pk=entry.pk)
    assert released.state == State.READY  # another worker can take it at once, no lease to wait out
    assert released.lease_token is None


def test_second_signal_exits_at_once(log_table, spawn_worker):
    services.entry_enqueue(run_id=uuid.uuid4())
    worker = spawn_worker("--handler", "tests.run_queue.handlers.slow", TEST_HANDLER_SLEEP="60")
    wait_for(lambda: len(logged()) == 1, message="the run started")
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert worker.poll() is None  # still finishing the run in hand
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 5


def test_idle_worker_starts_a_new_run_within_milliseconds(transactional_db, make_worker):
    started: dict[uuid.UUID, float] = {}

    def mark(entry):
        started[entry.run_id] = time.monotonic()
        from run_queue.outcomes import Outcome

        return Outcome.done()

    worker = make_worker(FunctionHandler(mark), poll_seconds=5.0)  # a poll could not explain the latency
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: worker.claimed == 0 and _listening(), message="listener connected")
        latencies = []
        for _ in range(30):
            run_id = uuid.uuid4()
            services.entry_enqueue(run_id=run_id)
            enqueued = time.monotonic()
            wait_for(lambda run_id=run_id: run_id in started, timeout=5, interval=0.001, message="start")
            latencies.append(started[run_id] - enqueued)
            time.sleep(0.02)
    finally:
        worker.stop()
        thread.join(timeout=10)
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.020, latencies


def _listeners() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN run_queue'")
        return cursor.fetchone()[0]


def _listening() -> bool:
    return _listeners() > 0


def test_worker_carries_on_after_its_database_connections_are_killed(log_table, make_worker):
    worker = make_worker(FunctionHandler(record), poll_seconds=0.1)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        services.entry_enqueue(run_id=uuid.uuid4())
        wait_for(lambda: len(logged()) == 1, message="first run")
        wait_for(_listening, message="listener connected")
        with connection.cursor() as cursor:  # what a PostgreSQL restart does to every client
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        services.entry_enqueue(run_id=uuid.uuid4())
        wait_for(lambda: len(logged()) == 2, timeout=20, message="run after the outage")
        wait_for(_listening, message="listener reconnected")
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert set(states().values()) == {State.DONE}


def test_done_entries_older_than_the_retention_are_pruned(transactional_db, settings):
    settings.QUEUE_RETENTION_S = 3600
    old, recent = uuid.uuid4(), uuid.uuid4()
    QueueEntry.objects.bulk_create(
        [
            QueueEntry(run_id=old, state=State.DONE, finished_at=timezone.now() - timedelta(hours=2)),
            QueueEntry(run_id=recent, state=State.DONE, finished_at=timezone.now()),
            QueueEntry(run_id=uuid.uuid4(), state=State.DEAD, finished_at=timezone.now() - timedelta(days=9)),
        ]
    )
    assert services.entries_prune() == 1
    assert not QueueEntry.objects.filter(run_id=old).exists()
    assert QueueEntry.objects.count() == 2


def test_claim_in_another_transaction_never_sees_a_locked_row(transactional_db):
    services.entry_enqueue(run_id=uuid.uuid4())
    assert len(claim_batch(owner="a", limit=5, lease_seconds=30)) == 1
    assert claim_batch(owner="b", limit=5, lease_seconds=30) == []
