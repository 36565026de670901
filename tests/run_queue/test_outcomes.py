"""What the worker does with each outcome: done, retry with backoff, fail, park; and raising handlers."""

import time
from collections import Counter

import pytest
from django.utils import timezone

from run_queue import services
from run_queue.handlers import FunctionHandler
from run_queue.models import QueueEntry, State
from run_queue.outcomes import Outcome


class Recording(FunctionHandler):
    def __init__(self, function):
        super().__init__(function)
        self.dead = []

    def on_dead(self, entry):
        self.dead.append(entry.run_id)


@pytest.fixture
def fast_backoff(settings):
    settings.QUEUE_RETRY_BASE_S = 0.2
    settings.QUEUE_RETRY_CAP_S = 1.0
    return settings


def run_until_settled(worker, entry, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = QueueEntry.objects.get(pk=entry.pk).state
        if state in {State.DONE, State.DEAD, State.PARKED}:
            return QueueEntry.objects.get(pk=entry.pk)
        worker.step()
        time.sleep(0.01)
    raise AssertionError("entry never settled")


def test_handler_failing_twice_then_succeeding_ends_done_after_three_attempts(
    db, fast_backoff, enqueue, make_worker
):
    calls = Counter()
    retry_times = []

    def flaky(entry):
        calls[entry.run_id] += 1
        if calls[entry.run_id] <= 2:
            retry_times.append(timezone.now())
            return Outcome.retry("http_status", "503 Service Unavailable")
        return Outcome.done()

    entry = enqueue(max_attempts=5)[0]
    worker = make_worker(Recording(flaky))
    worker.step()
    after_first = QueueEntry.objects.get(pk=entry.pk)
    assert after_first.state == State.READY
    assert after_first.last_error_class == "http_status"
    # backoff for attempt 1 is between base/2 and base (0.1 s .. 0.2 s)
    delay = (after_first.available_at - retry_times[0]).total_seconds()
    assert 0.09 <= delay <= 0.25
    assert worker.step() == 0  # not available yet: the backoff is respected
    final = run_until_settled(worker, entry)
    assert final.state == State.DONE
    assert final.attempts == 3
    assert calls[entry.run_id] == 3
    assert final.finished_at is not None
    assert final.lease_token is None


def test_always_failing_handler_ends_dead_after_max_attempts(db, fast_backoff, enqueue, make_worker):
    handler = Recording(lambda entry: Outcome.retry("timeout", "read timed out"))
    entry = enqueue(max_attempts=3)[0]
    final = run_until_settled(make_worker(handler), entry)
    assert final.state == State.DEAD
    assert final.attempts == 3
    assert final.last_error_class == "timeout"
    assert handler.dead == [entry.run_id]


def test_permanent_failure_is_not_retried(db, enqueue, make_worker):
    handler = Recording(lambda entry: Outcome.fail("http_status", "400 Bad Request"))
    entry = enqueue(max_attempts=5)[0]
    make_worker(handler).step()
    final = QueueEntry.objects.get(pk=entry.pk)
    assert final.state == State.DEAD
    assert final.attempts == 1
    assert final.last_error_detail == "400 Bad Request"
    assert handler.dead == [entry.run_id]


def test_raising_handler_is_a_retryable_error_with_its_traceback_logged(db, enqueue, make_worker, caplog):
    def broken(entry):
        raise ValueError("handler bug")

    entry = enqueue()[0]
    make_worker(Recording(broken)).step()
    final = QueueEntry.objects.get(pk=entry.pk)
    assert final.state == State.READY
    assert final.last_error_class == "exception"
    assert final.last_error_detail == "ValueError: handler bug"
    raised = [
        r for r in caplog.records if isinstance(r.msg, dict) and r.msg["event"] == "queue_handler_raised"
    ]
    assert raised
    assert raised[0].exc_info is not None


def test_parked_entry_waits_until_unparked_and_gets_a_fresh_retry_budget(db, enqueue, make_worker, settings):
    outcomes = iter([Outcome.park(), Outcome.done()])
    worker = make_worker(Recording(lambda entry: next(outcomes)))
    entry = enqueue()[0]
    worker.step()
    parked = QueueEntry.objects.get(pk=entry.pk)
    assert (parked.state, parked.attempts, parked.lease_token) == (State.PARKED, 1, None)
    assert parked.max_attempts == 1 + settings.QUEUE_MAX_ATTEMPTS
    assert worker.step() == 0
    assert services.entry_unpark(run_id=entry.run_id) is True
    assert services.entry_unpark(run_id=entry.run_id) is False
    worker.step()
    assert QueueEntry.objects.get(pk=entry.pk).state == State.DONE


def test_a_lease_reclaimed_past_max_attempts_goes_dead_without_running(db, enqueue, make_worker):
    handler = Recording(lambda entry: pytest.fail("must not run"))
    entry = enqueue(max_attempts=2)[0]
    QueueEntry.objects.filter(pk=entry.pk).update(attempts=2)
    make_worker(handler).step()
    final = QueueEntry.objects.get(pk=entry.pk)
    assert final.state == State.DEAD
    assert final.last_error_class == "lease_expired"
    assert handler.dead == [entry.run_id]


def test_a_handler_that_completes_its_entry_with_its_last_write_is_settled_without_another(
    transactional_db, enqueue, make_worker
):
    from django.db import transaction
    from structlog.testing import capture_logs

    def completing(entry):
        with transaction.atomic():
            services.lease_complete(entry)
        return Outcome.completed()

    worker = make_worker(Recording(completing))
    entry = enqueue()[0]
    [claimed] = worker.claim(1)
    worker.results.put((claimed, worker.process(claimed)))
    assert QueueEntry.objects.get(pk=entry.pk).state == State.DONE  # before the worker settles it
    with capture_logs() as logs:
        assert worker.renew_leases() == 0  # the entry is done, which is not a lost lease
        worker.settle()
    assert not [log for log in logs if log["event"] == "lease_lost"]
    assert [log["result"] for log in logs if log["event"] == "queue_settled"] == ["done"]
    assert worker.in_hand == {}
    assert worker.settled == 1
    final = QueueEntry.objects.get(pk=entry.pk)
    assert (final.state, final.lease_token, final.finished_at is not None) == (State.DONE, None, True)


def test_a_lease_that_is_really_lost_is_still_reported(transactional_db, enqueue, make_worker):
    from structlog.testing import capture_logs

    worker = make_worker(Recording(lambda entry: Outcome.done()))
    entry = enqueue()[0]
    worker.claim(1)
    QueueEntry.objects.filter(pk=entry.pk).update(lease_token=None, state=State.READY)  # taken away
    with capture_logs() as logs:
        worker.renew_leases()
    assert [log["run_id"] for log in logs if log["event"] == "lease_lost"] == [str(entry.run_id)]


def test_a_listening_worker_claims_when_told_of_work_or_when_its_poll_is_due_not_after_each_run(
    db, enqueue, make_worker
):
    worker = make_worker(Recording(lambda entry: Outcome.done()), poll_seconds=30, batch=5)
    worker._listening = True  # as run() sets it when the PostgreSQL listener starts

    class Pool:
        def submit(self, entry):
            pass

    enqueue()
    assert worker._claim_due()  # nothing claimed yet: more may be waiting
    assert worker.claim_into(Pool()) == 1
    assert not worker._claim_due()  # the batch was not full and nobody announced anything
    worker.notified.set()
    assert worker._claim_due()
    assert not worker.notified.is_set()
    enqueue(count=5)
    assert worker.claim_into(Pool()) == 5  # a full batch: more may be ready
    assert worker._claim_due()
    assert worker.claim_into(Pool()) == 0
    assert not worker._claim_due()
    worker._last_claim -= 30
    assert worker._claim_due()  # the poll: retries and expired leases announce themselves to nobody
