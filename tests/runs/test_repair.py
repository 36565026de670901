"""Run repair (``manage.py reconcile``'s steps) against the real reference executor: every run reaches a
terminal state, once, whatever died; a live lease is never fought."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from run_queue.models import QueueEntry, State
from runs.models import HumanLoopRequest, Run, RunEvent, RunStatus, Session
from runs.repair import Repair
from tests.executor_support import free_port, start_body, wait_until
from tests.factories import AppFactory, ExecutorFactory


@pytest.fixture
def repair():
    made = []

    def make(owner="reconciler-1"):
        made.append(Repair(owner=owner))
        return made[-1]

    yield make
    for item in made:
        item.close()


@pytest.fixture
def start(api_as, member, executor, transactional_db):
    """A run of ``playbook`` queued here; ``on_executor`` starts it there too, under the same id."""
    real = ExecutorFactory(name="real", base_url=executor.base_url, token=executor.token, read_timeout_s=5)

    def make(playbook="instant", *, on_executor=True, run_input=None):
        AppFactory(slug=f"{playbook}-r", playbook=playbook, executor=real)
        run_id = api_as(member).post("/api/runs/", {"app": f"{playbook}-r"}, format="json").json()["id"]
        if on_executor:
            body = start_body(playbook=playbook, run_id=run_id, run_input=run_input)
            assert executor.http("POST", "/v1/runs", json=body).status_code == 201
        return run_id

    return make


def orphan(run_id, *, status=RunStatus.RUNNING, quiet_s=3600, lease="expired"):
    """What a worker that died mid-run leaves: the run as it last wrote it, its lease running out."""
    now = timezone.now()
    Run.objects.filter(pk=run_id).update(
        status=status, started_at=now, synced_at=now - timedelta(seconds=quiet_s)
    )
    expires = now - timedelta(seconds=1) if lease == "expired" else now + timedelta(seconds=60)
    QueueEntry.objects.filter(run_id=run_id).update(
        state=State.LEASED,
        attempts=1,
        lease_owner="dead-worker",
        lease_token=uuid.uuid4(),
        lease_expires_at=expires,
    )


def finished_events(run_id):
    return list(RunEvent.objects.filter(run_id=run_id, type="run.finished").values_list("data", flat=True))


def entry_state(run_id):
    return QueueEntry.objects.get(run_id=run_id).state


# --- deadlines ---------------------------------------------------------------------------------------------
def test_a_queued_run_past_its_deadline_ends_timed_out_with_its_entry(start, repair):
    run_id = start(on_executor=False)
    Run.objects.filter(pk=run_id).update(deadline=timezone.now() - timedelta(seconds=1))
    assert repair().deadlines() == 1
    run = Run.objects.get(pk=run_id)
    assert (run.status, run.error_class) == (RunStatus.TIMED_OUT, "deadline_exceeded")
    assert finished_events(run_id) == [
        {
            "status": "timed_out",
            "error": {"code": "deadline_exceeded", "message": "The run went past its deadline."},
        }
    ]
    assert entry_state(run_id) == State.DONE


def test_a_running_run_past_its_deadline_is_cancelled_on_its_executor(start, repair, executor):
    run_id = start("long", run_input={"seconds": 60})
    orphan(run_id, quiet_s=0)
    Run.objects.filter(pk=run_id).update(deadline=timezone.now() - timedelta(seconds=1))
    assert repair().deadlines() == 1
    assert Run.objects.get(pk=run_id).status == RunStatus.TIMED_OUT
    executor.wait_for_state(run_id, "cancelled")  # the executor was told


def test_a_run_waiting_on_a_person_past_its_timeout_ends_timed_out(start, repair, settings):
    run_id = start("demo")
    orphan(run_id, status=RunStatus.WAITING_HUMAN, quiet_s=0)
    QueueEntry.objects.filter(run_id=run_id).update(
        state=State.PARKED, lease_token=None, lease_expires_at=None
    )
    Run.objects.filter(pk=run_id).update(
        waiting_since=timezone.now() - timedelta(seconds=settings.RUN_HUMAN_TIMEOUT_S + 1)
    )
    assert repair().deadlines() == 1
    assert Run.objects.get(pk=run_id).error_class == "human_timeout"


def test_a_live_lease_is_never_fought(start, repair):
    run_id = start("long", run_input={"seconds": 60})
    orphan(run_id, lease="live")
    Run.objects.filter(pk=run_id).update(deadline=timezone.now() - timedelta(seconds=1))
    assert repair().deadlines() == 0
    assert repair().stalled() == 0
    assert Run.objects.get(pk=run_id).status == RunStatus.RUNNING
    assert entry_state(run_id) == State.LEASED


# --- stalled and stale runs --------------------------------------------------------------------------------
def test_a_stalled_run_the_executor_never_heard_of_fails_executor_lost(start, repair):
    run_id = start(on_executor=False)
    orphan(run_id)
    assert repair().stalled() == 1
    run = Run.objects.get(pk=run_id)
    assert (run.status, run.error_class) == (RunStatus.FAILED, "executor_lost")
    assert entry_state(run_id) == State.DONE


def test_a_repair_decision_is_a_span_in_the_runs_trace_around_its_executor_call(start, repair, local_tracing):
    from observability.models import Span

    run_id = start(on_executor=False)
    orphan(run_id)
    assert repair().stalled() == 1
    local_tracing.flush()
    run = Run.objects.get(pk=run_id)
    spans = {span.name: span for span in Span.objects.filter(trace_id=run.trace_id)}
    root = spans["run.start"]
    assert root.span_id == run.pk.hex[:16]
    decision = spans["reconcile.stalled"]
    assert decision.parent_id == root.span_id
    assert decision.attributes["reconcile.decision"] == "finish:failed"
    assert decision.attributes["error.type"] == "executor_lost"
    call = spans["executor.get_run"]
    assert (call.parent_id, call.kind, call.status) == (decision.span_id, "client", "error")
    assert call.attributes["http.response.status_code"] == 404
    assert call.attributes["error.type"] == "http_status"


def test_a_stalled_run_finished_on_its_executor_is_synced_and_finished_here(start, repair, executor):
    run_id = start("instant")
    executor.wait_for_state(run_id, "succeeded")
    orphan(run_id)
    assert repair().stalled() == 1
    run = Run.objects.get(pk=run_id)
    assert run.status == RunStatus.SUCCEEDED
    seqs = list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, run.last_seq + 1))  # every missing event, in order, none twice
    assert RunEvent.objects.filter(run_id=run_id, type="message.delta").exists()
    assert entry_state(run_id) == State.DONE


def test_a_stalled_run_still_alive_on_its_executor_goes_back_to_the_workers(start, repair):
    run_id = start("long", run_input={"seconds": 60})
    orphan(run_id)
    assert repair().stalled() == 1
    entry = QueueEntry.objects.get(run_id=run_id)
    assert (entry.state, entry.lease_token) == (State.READY, None)
    run = Run.objects.get(pk=run_id)
    assert run.status == RunStatus.RUNNING
    assert timezone.now() - run.synced_at < timedelta(seconds=10)


@pytest.fixture
def unreachable_run(start):
    run_id = start(on_executor=False)
    closed = ExecutorFactory(name="gone", base_url=f"http://127.0.0.1:{free_port()}", token="t")
    Run.objects.filter(pk=run_id).update(executor=closed)
    return run_id


def test_a_stalled_run_whose_executor_is_unreachable_waits_out_the_grace_then_times_out(
    unreachable_run, repair, settings
):
    orphan(unreachable_run, quiet_s=settings.RUN_STALL_S + 1)
    assert repair().stalled() == 0
    assert entry_state(unreachable_run) == State.READY  # given back: within the grace period
    orphan(unreachable_run, quiet_s=settings.RUN_STALL_S + settings.RUN_EXECUTOR_GRACE_S + 1)
    assert repair().stalled() == 1
    run = Run.objects.get(pk=unreachable_run)
    assert (run.status, run.error_class) == (RunStatus.TIMED_OUT, "executor_unreachable")


def test_a_waiting_run_its_restarted_executor_forgot_fails_executor_lost(start, repair, executor, settings):
    run_id = start("demo")
    executor.wait_for_state(run_id, "waiting_input")
    orphan(run_id, status=RunStatus.WAITING_HUMAN, quiet_s=settings.RUN_SYNC_STALE_S + 1)
    QueueEntry.objects.filter(run_id=run_id).update(
        state=State.PARKED, lease_token=None, lease_expires_at=None
    )
    executor.faults(forget_runs=True)
    assert repair().stale_sync() == 1
    assert Run.objects.get(pk=run_id).error_class == "executor_lost"


def test_a_waiting_run_its_executor_still_waits_on_stays_parked_and_synced(start, repair, executor, settings):
    run_id = start("demo")
    executor.wait_for_state(run_id, "waiting_input")
    orphan(run_id, status=RunStatus.WAITING_HUMAN, quiet_s=settings.RUN_SYNC_STALE_S + 1)
    QueueEntry.objects.filter(run_id=run_id).update(
        state=State.PARKED, lease_token=None, lease_expires_at=None
    )
    assert repair().stale_sync() == 1
    assert entry_state(run_id) == State.PARKED
    assert timezone.now() - Run.objects.get(pk=run_id).synced_at < timedelta(seconds=10)


def test_two_reconcilers_end_each_run_once(start, repair):
    run_ids = [start(on_executor=False) for _ in range(6)]
    for run_id in run_ids:
        orphan(run_id)
    first, second = repair("reconciler-a"), repair("reconciler-b")
    counts = []

    def reconcile(item):
        try:
            counts.append(item.stalled())
        finally:
            connection.close()

    threads = [threading.Thread(target=reconcile, args=(item,)) for item in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(counts) == 6
    for run_id in run_ids:
        assert len(finished_events(run_id)) == 1
        assert Run.objects.get(pk=run_id).error_class == "executor_lost"


# --- consistency -------------------------------------------------------------------------------------------
def settled_long_ago(run_id, **fields):
    QueueEntry.objects.filter(run_id=run_id).update(
        updated_at=timezone.now() - timedelta(minutes=5), **fields
    )


def test_a_dead_entry_under_an_active_run_fails_the_run(start, repair):
    run_id = start(on_executor=False)
    settled_long_ago(run_id, state=State.DEAD, last_error_class="timeout", last_error_detail="gave up")
    assert repair().consistency() == 1
    run = Run.objects.get(pk=run_id)
    assert (run.status, run.error_class, run.error_detail) == (RunStatus.FAILED, "timeout", "gave up")


def test_a_done_entry_under_an_active_run_goes_back_to_the_queue(start, repair):
    run_id = start(on_executor=False)
    settled_long_ago(run_id, state=State.DONE, finished_at=timezone.now())
    assert repair().consistency() == 1
    assert entry_state(run_id) == State.READY


def test_an_answered_run_left_parked_is_woken(start, repair, api_as, member):
    run_id = start(on_executor=False)
    Run.objects.filter(pk=run_id).update(status=RunStatus.WAITING_HUMAN)
    HumanLoopRequest.objects.create(
        run_id=run_id,
        external_id="q",
        question="?",
        request_seq=2,
        status="answered",
        answer="yes",
        answered_at=timezone.now() - timedelta(minutes=5),
    )
    settled_long_ago(run_id, state=State.PARKED)
    assert repair().consistency() == 1
    assert entry_state(run_id) == State.READY


def test_a_run_queued_behind_a_finished_one_is_released(start, repair, api_as, member):
    first = start(on_executor=False)
    session = Run.objects.get(pk=first).session_id
    body = {"app": "instant-r", "session_id": str(session), "multitask": "enqueue"}
    second = api_as(member).post("/api/runs/", body, format="json").json()["id"]
    assert entry_state(second) == State.PARKED
    # The first run ended, and the release of the second was lost (a kill between two commits).
    Run.objects.filter(pk=first).update(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
    settled_long_ago(second)
    assert repair().consistency() == 1
    assert entry_state(second) == State.READY


# --- retention ---------------------------------------------------------------------------------------------
def test_retention_deletes_old_finished_runs_in_bounded_batches(start, repair, settings):
    old, recent = start(on_executor=False), start(on_executor=False)
    long_ago = timezone.now() - timedelta(seconds=settings.RUN_RETENTION_S + 60)
    for run_id, finished in ((old, long_ago), (recent, timezone.now())):
        Run.objects.filter(pk=run_id).update(status=RunStatus.SUCCEEDED, finished_at=finished)
    RunEvent.objects.bulk_create(
        RunEvent(run_id=old, seq=seq, type="message.delta", data={}) for seq in range(2, 12)
    )
    session = Run.objects.get(pk=old).session_id
    item = repair()
    assert item.retention(event_batch=4) == 4  # events first, a bounded number per call
    assert Run.objects.filter(pk=old).exists()
    while item.retention(event_batch=4):
        pass
    assert not Run.objects.filter(pk=old).exists()
    assert not QueueEntry.objects.filter(run_id=old).exists()
    assert not Session.objects.filter(pk=session).exists()
    assert Run.objects.filter(pk=recent).exists()


def test_retention_prunes_old_finished_queue_entries(start, repair, settings):
    run_id = start(on_executor=False)
    long_ago = timezone.now() - timedelta(seconds=settings.QUEUE_RETENTION_S + 60)
    QueueEntry.objects.filter(run_id=run_id).update(state=State.DONE, finished_at=long_ago)
    assert repair().retention() == 1
    wait_until(lambda: not QueueEntry.objects.filter(run_id=run_id).exists(), what="entry pruned")
