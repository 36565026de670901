"""insert_together: rows of several models, in one statement, with a notification."""

import uuid

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from core.db import insert_together
from run_queue.listener import _conninfo
from run_queue.models import QueueEntry
from runs.models import Run, RunEvent, Session
from tests.factories import AppFactory, UserFactory


def new_rows(user, app):
    session = Session(user=user, app=app)
    run = Run(session=session, app=app, executor=app.executor, user=user, trace_id="t" * 32, last_seq=1)
    entry = QueueEntry(run_id=run.pk, max_attempts=3)
    event = RunEvent(run=run, seq=1, type="run.queued", data={"session_id": str(session.pk)})
    return [session, run, entry, event]


def test_rows_that_refer_to_each_other_go_in_one_statement_with_their_defaults(db):
    user, app = UserFactory(), AppFactory()
    rows = new_rows(user, app)
    with CaptureQueriesContext(connection) as queries:
        insert_together(rows)
    if connection.vendor == "postgresql":
        assert len(queries) == 1
    session, run, _, event = rows
    stored = Run.objects.get(pk=run.pk)
    assert (stored.session_id, stored.status, stored.created_at) == (session.pk, "queued", run.created_at)
    assert RunEvent.objects.get(run=run).data == event.data
    assert QueueEntry.objects.get(run_id=run.pk).state == "ready"
    assert not run._state.adding


def test_a_row_that_breaks_a_constraint_leaves_none_of_them(db):
    user, app = UserFactory(), AppFactory()
    first = new_rows(user, app)
    insert_together(first)
    again = new_rows(user, app)
    again[2].run_id = first[1].pk  # a second queue entry for the same run
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_together(again)
    assert not Session.objects.filter(pk=again[0].pk).exists()
    assert not Run.objects.filter(pk=again[1].pk).exists()


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_the_notification_is_delivered_when_the_rows_commit(transactional_db):
    user, app = UserFactory(), AppFactory()
    channel = f"test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**_conninfo(), autocommit=True) as listener:
        listener.execute(f"LISTEN {channel}")
        with transaction.atomic():
            insert_together(new_rows(user, app), notify=channel)
            assert list(listener.notifies(timeout=0.2, stop_after=1)) == []
        assert [n.channel for n in listener.notifies(timeout=5, stop_after=1)] == [channel]


def test_update_fields_changes_only_the_rows_that_match_and_counts_them(db):
    from django.utils import timezone

    from core.db import update_fields

    user, app = UserFactory(), AppFactory()
    rows = new_rows(user, app)
    insert_together(rows)
    run = rows[1]
    now = timezone.now()
    changed = update_fields(
        Run,
        where={"id": run.pk, "status": "queued"},
        values={"status": "running", "started_at": now, "error_detail": "é"},
        add={"attempts": 2},
    )
    assert changed == 1
    stored = Run.objects.get(pk=run.pk)
    assert (stored.status, stored.started_at, stored.error_detail, stored.attempts) == (
        "running",
        now,
        "é",
        2,
    )
    assert update_fields(Run, where={"id": run.pk, "status": "queued"}, values={"status": "failed"}) == 0
    entry = QueueEntry.objects.get(run_id=run.pk)
    assert update_fields(QueueEntry, where={"id": entry.pk, "lease_token": None}, values={"priority": 3}) == 1
    assert QueueEntry.objects.get(pk=entry.pk).priority == 3


def test_insert_rows_stores_json_and_foreign_keys_as_the_orm_would(db):
    from django.utils import timezone

    from core.db import insert_rows

    user, app = UserFactory(), AppFactory()
    rows = new_rows(user, app)
    insert_together(rows)
    run, now = rows[1], timezone.now()
    data = [{"text": 'δ "q" \\', "n": [1, None]}, {}]
    insert_rows(
        RunEvent,
        ["run_id", "seq", "type", "data", "created_at"],
        [[run.pk, 2, "message.delta", data[0], now], [run.pk, 3, "message.stop", data[1], now]],
    )
    stored = list(RunEvent.objects.filter(run=run, seq__gt=1).order_by("seq"))
    assert [(e.seq, e.type, e.data, e.created_at) for e in stored] == [
        (2, "message.delta", data[0], now),
        (3, "message.stop", data[1], now),
    ]
