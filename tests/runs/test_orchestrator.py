"""The worker's writes for a run: one statement locks the run with its lease, and the write that ends the
run also completes its queue entry and reads its session under lock."""

import uuid

import pytest
from django.db import connection, transaction

from agents.executor_client import ExecutorEvent
from run_queue.claims import claim_batch
from run_queue.models import QueueEntry, State
from run_queue.services import LeaseLost
from runs.models import Run, RunStatus, Session
from runs.orchestrator import Attempt, RunHandler, lock_for_write
from runs.protocol import ProtocolViolation
from tests.factories import AppFactory


@pytest.fixture
def claimed(api_as, member, db):
    AppFactory(slug="demo")
    body = api_as(member).post("/api/runs/", {"app": "demo"}, format="json").json()
    [entry] = claim_batch(owner="w1", limit=1, lease_seconds=30)
    assert str(entry.run_id) == body["id"]
    return Run.objects.get(pk=body["id"]), entry


def test_a_write_under_a_lease_that_moved_on_is_refused(claimed):
    run, entry = claimed
    with transaction.atomic():
        assert lock_for_write(run.pk, entry, finishing=False).pk == run.pk
    stale = QueueEntry(pk=entry.pk, lease_token=uuid.uuid4())
    with pytest.raises(LeaseLost), transaction.atomic():
        lock_for_write(run.pk, stale, finishing=False)


@pytest.mark.parametrize("queued_runs", [False, True])
def test_the_last_write_reads_whether_the_session_queued_runs(claimed, queued_runs):
    run, entry = claimed
    Session.objects.filter(pk=run.session_id).update(queued_runs=queued_runs)
    with transaction.atomic():
        assert lock_for_write(run.pk, entry, finishing=True).session_queued_runs is queued_runs


def batch(*types_and_data, start=1):
    return [ExecutorEvent(seq, t, d) for seq, (t, d) in enumerate(types_and_data, start=start)]


def test_the_batch_that_ends_the_run_completes_its_queue_entry_in_the_same_transaction(claimed):
    run, entry = claimed
    attempt = Attempt(entry)
    stored = RunHandler._store(run, attempt, batch(("run.started", {})))
    assert (stored.status, attempt.completed) == (RunStatus.RUNNING, False)
    assert QueueEntry.objects.get(pk=entry.pk).state == State.LEASED
    stored = RunHandler._store(stored, attempt, batch(("run.finished", {"status": "succeeded"}), start=2))
    assert (stored.status, stored.session_queued_runs, attempt.completed) == (
        RunStatus.SUCCEEDED,
        False,
        True,
    )
    assert QueueEntry.objects.get(pk=entry.pk).state == State.DONE
    assert Run.objects.get(pk=run.pk).attempts == 1


def test_a_finish_with_an_unknown_status_is_a_protocol_error_and_stores_nothing(claimed):
    run, entry = claimed
    attempt = Attempt(entry)
    with pytest.raises(ProtocolViolation, match="status"):
        RunHandler._store(run, attempt, batch(("run.started", {}), ("run.finished", {"status": "odd"})))
    fresh = Run.objects.get(pk=run.pk)
    assert (fresh.status, fresh.last_seq) == (RunStatus.QUEUED, 1)
    assert QueueEntry.objects.get(pk=entry.pk).state == State.LEASED


def test_the_last_write_of_a_worker_that_lost_its_lease_stores_nothing(claimed):
    run, entry = claimed
    QueueEntry.objects.filter(pk=entry.pk).update(lease_token=uuid.uuid4())  # another worker took it over
    with pytest.raises(LeaseLost):
        RunHandler._store(run, Attempt(entry), batch(("run.finished", {"status": "succeeded"})))
    fresh = Run.objects.get(pk=run.pk)
    assert (fresh.status, fresh.last_seq) == (RunStatus.QUEUED, 1)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_prepared_reads_of_a_run_survive_a_migration_that_adds_a_column(transactional_db, claimed, settings):
    import psycopg

    from run_queue.listener import _conninfo
    from runs.orchestrator import _run

    run, entry = claimed
    assert settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]  # psycopg prepares repeated reads
    for _ in range(10):
        _run(run.pk)
        with transaction.atomic():
            lock_for_write(run.pk, entry, finishing=False)
    table = Run._meta.db_table
    with psycopg.connect(**_conninfo(), autocommit=True) as other:  # a migration deployed meanwhile
        other.execute(f"ALTER TABLE {table} ADD COLUMN added_later integer")
        try:
            assert _run(run.pk).pk == run.pk
            with transaction.atomic():
                assert lock_for_write(run.pk, entry, finishing=False).pk == run.pk
        finally:
            other.execute(f"ALTER TABLE {table} DROP COLUMN added_later")
