import uuid

import pytest
from django.core.management import CommandError, call_command

from run_queue import handlers, services
from run_queue.models import QueueEntry, State


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def test_changelist_filters_by_state_and_finds_a_run(admin_client, enqueue):
    ready, dead = enqueue(2)
    QueueEntry.objects.filter(pk=dead.pk).update(state=State.DEAD)
    page = admin_client.get("/admin/run_queue/queueentry/", {"state__exact": "dead"}).content.decode()
    assert str(dead.run_id) in page
    assert str(ready.run_id) not in page
    page = admin_client.get("/admin/run_queue/queueentry/", {"q": str(ready.run_id)}).content.decode()
    assert str(ready.run_id) in page
    assert str(dead.run_id) not in page


def test_retry_now_makes_a_dead_entry_ready_with_a_fresh_budget(admin_client, enqueue, settings):
    entry = enqueue()[0]
    QueueEntry.objects.filter(pk=entry.pk).update(state=State.DEAD, attempts=5, last_error_class="timeout")
    response = admin_client.post(
        "/admin/run_queue/queueentry/", {"action": "retry_now", "_selected_action": [entry.pk]}
    )
    assert response.status_code == 302
    entry.refresh_from_db()
    # attempts keep counting (the run's one count); the budget moves on
    assert (entry.state, entry.attempts, entry.finished_at) == (State.READY, 5, None)
    assert entry.max_attempts == 5 + settings.QUEUE_MAX_ATTEMPTS


def test_mark_dead_stops_waiting_entries_and_tells_the_handler(admin_client, enqueue, monkeypatch):
    told = []

    class Handler:
        def handle(self, entry):
            raise AssertionError

        def on_dead(self, entry):
            told.append(entry.run_id)

    monkeypatch.setattr(handlers, "_registered", Handler())
    waiting, running = enqueue(2)
    QueueEntry.objects.filter(pk=running.pk).update(
        state=State.LEASED, lease_token=uuid.uuid4(), lease_expires_at=running.available_at
    )
    admin_client.post(
        "/admin/run_queue/queueentry/", {"action": "mark_dead", "_selected_action": [waiting.pk, running.pk]}
    )
    assert QueueEntry.objects.get(pk=waiting.pk).state == State.DEAD
    assert QueueEntry.objects.get(pk=running.pk).state == State.LEASED  # left to its worker
    assert told == [waiting.run_id]


def test_queue_admin_is_for_staff_only(client, member):
    client.force_login(member)
    assert client.get("/admin/run_queue/queueentry/").status_code == 302


def test_runworker_once_runs_one_batch(db, capsys):
    services.entry_enqueue(run_id=uuid.uuid4())
    call_command("runworker", "--once", "--handler", "tests.run_queue.test_admin_and_command.succeed")
    assert "handled 1" in capsys.readouterr().out
    assert QueueEntry.objects.get().state == State.DONE


@pytest.mark.parametrize("args", [["--concurrency", "0"], ["--handler", "no.such.handler"]])
def test_runworker_rejects_bad_arguments(db, args):
    with pytest.raises(CommandError):
        call_command("runworker", "--once", *args)


def succeed(entry):
    from run_queue.outcomes import Outcome

    return Outcome.done()
