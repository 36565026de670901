"""The reconciler's heartbeat: each pass upserts its owner's row; owners silent for a day are forgotten."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from observability.models import ReconcilerHeartbeat
from observability.reconciler import Reconciler, ReconcilerOptions
from observability.services import HEARTBEAT_FORGET_AFTER, heartbeat_record


def test_each_pass_moves_its_reconciler_s_one_row(transactional_db):
    reconciler = Reconciler(options=ReconcilerOptions(), owner="reconciler:test:1")
    try:
        reconciler.run_once()
        first = ReconcilerHeartbeat.objects.get(owner="reconciler:test:1")
        reconciler.run_once()
    finally:
        reconciler.repair.close()
    second = ReconcilerHeartbeat.objects.get(owner="reconciler:test:1")
    assert (first.passes, second.passes) == (1, 2)
    assert second.last_pass_at > first.last_pass_at
    assert ReconcilerHeartbeat.objects.count() == 1


def test_the_heartbeat_is_one_upsert_and_one_prune(db):
    heartbeat_record(owner="reconciler:a", passes=1)
    with CaptureQueriesContext(connection) as queries:
        assert heartbeat_record(owner="reconciler:a", passes=2)
    statements = [query["sql"] for query in queries.captured_queries]
    statements = [sql for sql in statements if sql.split()[0] not in {"SAVEPOINT", "RELEASE"}]
    assert [sql.split()[0] for sql in statements] == ["INSERT", "DELETE"]
    assert "ON CONFLICT" in statements[0]
    assert ReconcilerHeartbeat.objects.get(owner="reconciler:a").passes == 2


def test_reconcilers_gone_for_a_day_are_forgotten_by_the_next_pass_of_any(db):
    now = timezone.now()
    ReconcilerHeartbeat.objects.create(owner="reconciler:gone", last_pass_at=now - HEARTBEAT_FORGET_AFTER * 2)
    ReconcilerHeartbeat.objects.create(owner="reconciler:quiet", last_pass_at=now - timedelta(hours=2))
    heartbeat_record(owner="reconciler:here", passes=1)
    assert set(ReconcilerHeartbeat.objects.values_list("owner", flat=True)) == {
        "reconciler:quiet",
        "reconciler:here",
    }
