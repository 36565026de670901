import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from run_queue import services
from run_queue.claims import CLAIM_SQL, claim_batch
from run_queue.models import QueueEntry, State


def test_claim_leases_highest_priority_then_oldest_first(db, enqueue):
    low = enqueue(priority=0)[0]
    high_old = enqueue(priority=5)[0]
    high_new = enqueue(priority=5)[0]
    QueueEntry.objects.filter(pk=high_old.pk).update(available_at=timezone.now() - timedelta(minutes=1))
    claimed = claim_batch(owner="w1", limit=2, lease_seconds=30)
    assert [e.pk for e in claimed] == [high_old.pk, high_new.pk]
    assert all(e.state == State.LEASED and e.attempts == 1 and e.lease_owner == "w1" for e in claimed)
    assert len({e.lease_token for e in claimed}) == 2
    assert QueueEntry.objects.get(pk=low.pk).state == State.READY


def test_claim_is_one_statement(db, enqueue):
    enqueue(5)
    with CaptureQueriesContext(connection) as queries:
        claimed = claim_batch(owner="w1", limit=10, lease_seconds=30)
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(claimed) == 5
    assert len(statements) == 1


def test_entries_not_yet_available_are_not_claimed(db, enqueue):
    entry = enqueue()[0]
    QueueEntry.objects.filter(pk=entry.pk).update(available_at=timezone.now() + timedelta(minutes=5))
    assert claim_batch(owner="w1", limit=10, lease_seconds=30) == []


def test_parked_done_and_dead_entries_are_not_claimed(db, enqueue):
    for entry, state in zip(enqueue(3), [State.PARKED, State.DONE, State.DEAD], strict=True):
        QueueEntry.objects.filter(pk=entry.pk).update(state=state)
    assert claim_batch(owner="w1", limit=10, lease_seconds=30) == []


def test_expired_lease_is_reclaimed_by_another_worker_with_a_new_token(db, enqueue):
    enqueue()
    first = claim_batch(owner="w1", limit=1, lease_seconds=30)[0]
    assert claim_batch(owner="w2", limit=1, lease_seconds=30) == []
    QueueEntry.objects.filter(pk=first.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    second = claim_batch(owner="w2", limit=1, lease_seconds=30)[0]
    assert second.pk == first.pk
    assert second.lease_owner == "w2"
    assert second.attempts == 2
    assert second.lease_token != first.lease_token
    # The first worker's late writes change nothing.
    assert services.entries_complete(entries=[first]) == set()
    assert services.entry_retry(entry=first, error_class="x", detail="") is None
    assert services.entry_park(entry=first) is False
    assert QueueEntry.objects.get(pk=first.pk).lease_token == second.lease_token


def test_a_run_cannot_be_queued_twice(db):
    run_id = uuid.uuid4()
    services.entry_enqueue(run_id=run_id)
    with pytest.raises(IntegrityError), transaction.atomic():
        services.entry_enqueue(run_id=run_id)
    assert QueueEntry.objects.filter(run_id=run_id).count() == 1


def test_lease_fence_refuses_a_stale_token(db, enqueue):
    from run_queue.services import LeaseLost, lease_fence

    enqueue()
    entry = claim_batch(owner="w1", limit=1, lease_seconds=30)[0]
    with transaction.atomic():
        lease_fence(entry)
    stale = QueueEntry(pk=entry.pk, lease_token=uuid.uuid4())
    with pytest.raises(LeaseLost), transaction.atomic():
        lease_fence(stale)


def test_claim_plan_walks_the_partial_index_with_many_finished_rows(db):
    now = timezone.now()
    QueueEntry.objects.bulk_create(
        [
            QueueEntry(run_id=uuid.uuid4(), state=State.DONE, finished_at=now, max_attempts=5)
            for _ in range(30_000)
        ]
        + [QueueEntry(run_id=uuid.uuid4()) for _ in range(50)],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {QueueEntry._meta.db_table}")
        sql = CLAIM_SQL.format(table=QueueEntry._meta.db_table, returned="id")
        cursor.execute("EXPLAIN " + sql, {"n": 10, "owner": "x", "lease": 30})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    ready_branch = plan.split("CTE ready")[1].split("CTE expired")[0]
    assert "Index Scan using run_queue_ready_idx" in ready_branch, plan
    assert "Sort" not in ready_branch, plan  # walks the index in order, stops after the batch
    assert "Seq Scan" not in plan, plan  # the expired-lease branch only touches leased rows too


def test_lease_complete_marks_the_entry_done_only_for_the_lease_holder(db, enqueue):
    from run_queue.services import LeaseLost, lease_complete

    enqueue()
    entry = claim_batch(owner="w1", limit=1, lease_seconds=30)[0]
    stale = QueueEntry(pk=entry.pk, lease_token=uuid.uuid4())
    with pytest.raises(LeaseLost), transaction.atomic():
        lease_complete(stale)
    assert QueueEntry.objects.get(pk=entry.pk).state == State.LEASED
    with transaction.atomic():
        lease_complete(entry)
    assert QueueEntry.objects.get(pk=entry.pk).state == State.DONE
