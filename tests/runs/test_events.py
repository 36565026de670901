"""Appending events: seqs, both insert paths (INSERT for short batches, COPY for long ones), projections."""

import pytest
from django.db import transaction

from runs.events import COPY_FROM, NewEvent, append_events
from runs.models import Run, RunEvent, RunStatus
from tests.factories import AppFactory


@pytest.fixture
def run(api_as, member, db):
    AppFactory(slug="demo")
    body = api_as(member).post("/api/runs/", {"app": "demo"}, format="json").json()
    return Run.objects.get(pk=body["id"])


@pytest.mark.parametrize("count", [3, COPY_FROM, 250])
def test_a_batch_is_stored_after_the_last_event_with_its_data_intact(run, count):
    data = [
        {"message_id": "m1", "text": f'δ {i} "quoted" \\ tab\t', "nested": {"n": i, "l": [1, None]}}
        for i in range(count)
    ]
    with transaction.atomic():
        stored, rows = append_events(
            run_id=run.pk, events=[NewEvent("message.delta", d) for d in data], executor_seq=count
        )
    assert [r.seq for r in rows] == list(range(2, count + 2))
    assert stored.last_seq == count + 1
    assert stored.executor_seq == count
    saved = list(RunEvent.objects.filter(run=run, type="message.delta").order_by("seq"))
    assert [e.data for e in saved] == data
    assert all(e.created_at is not None for e in saved)


def test_projections_apply_inside_a_long_batch(run):
    events = [NewEvent("run.started", {})]
    events += [NewEvent("message.delta", {"message_id": "m", "text": "x"}) for _ in range(COPY_FROM)]
    events += [
        NewEvent("todo.update", {"todos": [{"id": "t1", "title": "Plan", "status": "done"}]}),
        NewEvent("run.finished", {"status": "succeeded"}),
    ]
    with transaction.atomic():
        stored, _ = append_events(run_id=run.pk, events=events)
    assert stored.status == RunStatus.SUCCEEDED
    assert list(run.todos.values_list("todo_id", "status")) == [("t1", "done")]
    run.refresh_from_db()
    assert (run.status, run.last_seq) == (RunStatus.SUCCEEDED, len(events) + 1)
    assert run.started_at is not None
    assert run.finished_at is not None


def test_finishing_a_run_that_asked_closes_its_open_questions_even_in_a_later_batch(run):
    from runs.models import HumanLoopRequest, HumanLoopStatus

    with transaction.atomic():
        append_events(
            run_id=run.pk,
            events=[
                NewEvent("run.started", {}),
                NewEvent("human_loop.request", {"request_id": "q1", "question": "Go?"}),
                NewEvent("human_loop.request", {"request_id": "q2", "question": "Really?"}),
                NewEvent("human_loop.reply", {"request_id": "q1"}),
            ],
        )
    run.refresh_from_db()
    assert run.asked_human
    assert HumanLoopRequest.objects.get(run=run, external_id="q2").status == HumanLoopStatus.PENDING
    with transaction.atomic():
        append_events(run_id=run.pk, events=[NewEvent("run.finished", {"status": "succeeded"})])
    assert set(HumanLoopRequest.objects.filter(run=run).values_list("status", flat=True)) == {
        HumanLoopStatus.CLOSED
    }


def test_finishing_a_run_that_never_asked_touches_no_question(run):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        append_events(
            run_id=run.pk,
            events=[NewEvent("run.started", {}), NewEvent("run.finished", {"status": "succeeded"})],
        )
    assert not [q for q in queries.captured_queries if "runs_humanlooprequest" in q["sql"]]
    run.refresh_from_db()
    assert (run.status, run.asked_human) == (RunStatus.SUCCEEDED, False)
