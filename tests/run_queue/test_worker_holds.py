"""What a worker holds: no more leases than it can start, none renewed for a handler stuck for good, and a
dead entry's run failed in the same transaction; every time the queue compares is the database's."""

import threading
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection
from django.utils import timezone

from run_queue import services
from run_queue.claims import claim_batch
from run_queue.models import QueueEntry, State
from run_queue.outcomes import Outcome
from run_queue.worker import HandlerPool


class Blocking:
    """A handler that holds every entry until released."""

    def __init__(self):
        self.release = threading.Event()
        self.started = []

    def handle(self, entry):
        self.started.append(entry.run_id)
        self.release.wait(10)
        return Outcome.done()

    def on_dead(self, entry):
        pass


def test_a_worker_leases_no_more_runs_than_it_has_free_threads(transactional_db, enqueue, make_worker):
    enqueue(20)
    handler = Blocking()
    worker = make_worker(handler, concurrency=2, batch=50)
    pool = HandlerPool(2, worker._run_in_thread)
    try:
        assert worker.claim_into(pool) == 2
        assert worker.claim_into(pool) == 0  # both threads busy: nothing more is leased
        assert QueueEntry.objects.filter(state=State.LEASED).count() == 2
        assert QueueEntry.objects.filter(state=State.READY).count() == 18
    finally:
        handler.release.set()
        pool.shutdown(timeout=5)


def test_a_handler_that_shows_no_progress_stops_having_its_lease_renewed(
    transactional_db, enqueue, make_worker
):
    enqueue(2)
    worker = make_worker(Blocking(), stall_seconds=60)
    stuck, healthy = worker.claim(2)
    stuck.progressed_at -= 120  # its handler heard nothing from its executor for two minutes
    before = QueueEntry.objects.get(pk=stuck.pk).lease_expires_at
    assert worker.renew_leases() == 1
    assert QueueEntry.objects.get(pk=stuck.pk).lease_expires_at == before
    assert QueueEntry.objects.get(pk=healthy.pk).lease_expires_at > before


class DiesOnce:
    """Fails every entry; telling the domain fails once with a database error, as an outage would."""

    def __init__(self):
        self.told = []

    def handle(self, entry):
        return Outcome.fail("http_status", "refused")

    def on_dead(self, entry):
        if not self.told:
            self.told.append("failed")
            raise DatabaseError("the connection dropped")
        self.told.append(entry.run_id)


def test_an_entry_is_not_dead_unless_its_run_was_told_in_the_same_transaction(db, enqueue, make_worker):
    [entry] = enqueue()
    handler = DiesOnce()
    worker = make_worker(handler)
    worker.results.put((worker.claim(1)[0], Outcome.fail("http_status", "refused")))
    with pytest.raises(DatabaseError):
        worker.settle()
    # Rolled back together: the entry is still leased (not dead under a run nobody failed) ...
    assert QueueEntry.objects.get(pk=entry.pk).state == State.LEASED
    # ... and the outcome is kept, so the next round writes both.
    assert worker.settle() == 1
    assert QueueEntry.objects.get(pk=entry.pk).state == State.DEAD
    assert handler.told == ["failed", entry.run_id]


@pytest.fixture
def process_clock_an_hour_behind(monkeypatch):
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() - timedelta(hours=1))


def _database_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def test_renewals_backoffs_and_unparks_use_the_database_clock(db, enqueue, process_clock_an_hour_behind):
    entries = enqueue(3)
    renewed, retried, parked = claim_batch(owner="w", limit=3, lease_seconds=30)
    services.leases_renew(lease_tokens=[renewed.lease_token])
    services.entry_retry(entry=retried, error_class="timeout", detail="")
    services.entry_park(entry=parked)
    services.entry_unpark(run_id=parked.run_id)
    now = _database_now()
    fresh = {e.pk: e for e in QueueEntry.objects.filter(pk__in=[e.pk for e in entries])}
    # An hour behind, a process clock would put these times an hour in the past: already expired or due.
    assert fresh[renewed.pk].lease_expires_at > now + timedelta(seconds=20)
    assert fresh[retried.pk].available_at > now - timedelta(seconds=5)
    assert abs(fresh[parked.pk].available_at - now) < timedelta(seconds=5)
