"""A person's inbox: the questions waiting for them (GET /api/human-loop/pending) and the live hints that
the list changed (GET /api/human-loop/events, runs.inbox). Real PostgreSQL and Redis."""

import asyncio
import json
import re
import threading

import pytest
from django.db import connection, transaction

from runs import inbox, live, services
from runs.events import NewEvent, append_events
from runs.models import HumanLoopRequest, Run
from runs.sse import KEEP_ALIVE, RESYNC_HINT, _hints
from tests.factories import AppFactory, UserFactory
from tests.runs.test_live import kill_subscribers, next_chunk, run_scenario, until_listening

pytestmark = pytest.mark.django_db(transaction=True)
HINTS = re.compile(rb"^event: inbox\.changed\ndata: (.*)$", re.MULTILINE)


def start_run(api_as, user, slug="asker") -> Run:
    AppFactory(slug=slug, name="The Asker")
    body = api_as(user).post("/api/runs/", {"app": slug}, format="json").json()
    return Run.objects.get(pk=body["id"])


def store(run, *events: NewEvent) -> None:
    with transaction.atomic():
        append_events(run_id=run.pk, events=list(events))


def ask(run, request_id="q1", question="Ship it?", options=("approve", "reject")) -> None:
    store(
        run,
        NewEvent(
            "human_loop.request", {"request_id": request_id, "question": question, "options": list(options)}
        ),
    )


def in_thread(action, *args, **kwargs):
    """As another process's worker (or web request) does: its own thread and connection."""
    failure: list[BaseException] = []

    def target():
        try:
            action(*args, **kwargs)
        except BaseException as exc:
            failure.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def hints(chunk: bytes) -> list[dict]:
    return [json.loads(data) for data in HINTS.findall(chunk)]


# --- the pending list ---------------------------------------------------------------------------------
def test_the_pending_list_shows_what_the_inbox_needs(api_as, member):
    run = start_run(api_as, member)
    ask(run)
    [item] = api_as(member).get("/api/human-loop/pending").json()["results"]
    request = HumanLoopRequest.objects.get(run=run)
    assert item["request_id"] == str(request.pk)
    assert item["run_id"] == str(run.pk)
    assert item["session_id"] == str(run.session_id)
    assert item["app"] == {"slug": "asker", "name": "The Asker"}
    assert item["question"] == "Ship it?"
    assert item["options"] == ["approve", "reject"]
    assert item["created_at"]


def test_the_pending_list_costs_the_same_queries_for_one_question_or_many(
    api_as, member, django_assert_num_queries
):
    api = api_as(member)
    ask(start_run(api_as, member, slug="first"))
    with django_assert_num_queries(2):  # the count and the page
        assert len(api.get("/api/human-loop/pending").json()["results"]) == 1
    for n in range(4):
        ask(start_run(api_as, member, slug=f"app-{n}"))
    with django_assert_num_queries(2):
        assert len(api.get("/api/human-loop/pending").json()["results"]) == 5


def test_scope_mine_leaves_out_the_runs_a_superuser_may_answer_but_did_not_start(api_as, member, superuser):
    ask(start_run(api_as, member))
    assert api_as(superuser).get("/api/human-loop/pending").json()["count"] == 1
    assert api_as(superuser).get("/api/human-loop/pending?scope=mine").json()["count"] == 0
    assert api_as(member).get("/api/human-loop/pending?scope=mine").json()["count"] == 1
    assert api_as(member).get("/api/human-loop/pending?scope=everyone").status_code == 400


def test_an_answered_question_leaves_the_list_at_once(api_as, member):
    run = start_run(api_as, member)
    ask(run)
    request = HumanLoopRequest.objects.get(run=run)
    services.human_loop_reply(user=member, request_id=str(request.pk), answer="approve")
    assert api_as(member).get("/api/human-loop/pending?scope=mine").json()["count"] == 0


# --- the stream ---------------------------------------------------------------------------------------
def test_an_anonymous_inbox_stream_is_a_401(api):
    response = api.get("/api/human-loop/events", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_the_stream_opens_on_the_user_s_own_channel(api_as, member, monkeypatch):
    opened = []
    monkeypatch.setattr("runs.views.stream_hints", lambda request, channel: opened.append(channel) or _ok())
    api_as(member).get("/api/human-loop/events", HTTP_ACCEPT="text/event-stream")
    assert opened == [f"inbox-{member.pk}"]


def _ok():
    from django.http import HttpResponse

    return HttpResponse("")


def test_a_question_stored_by_a_worker_reaches_its_owner_s_stream_and_no_one_else_s(local, api_as, member):
    run = start_run(api_as, member)
    other = UserFactory(username="someone-else")

    async def scenario():
        mine, theirs = (
            _hints(inbox.inbox_channel(member.pk), free=lambda: None),
            _hints(inbox.inbox_channel(other.pk), free=lambda: None),
        )
        assert b"event: stream-open" in await next_chunk(mine)
        assert b"event: stream-open" in await next_chunk(theirs)
        await asyncio.to_thread(in_thread, ask, run)
        assert hints(await next_chunk(mine)) == [{"run_id": str(run.pk), "reason": "event"}]
        with pytest.raises(TimeoutError):
            await next_chunk(theirs, timeout=0.3)
        await mine.aclose()
        await theirs.aclose()

    run_scenario(scenario)


def test_an_answer_given_here_and_the_end_of_a_run_that_asked_send_hints(local, api_as, member):
    run = start_run(api_as, member)
    ask(run, request_id="q1")
    ask(run, request_id="q2")
    first = HumanLoopRequest.objects.get(run=run, external_id="q1")

    async def scenario():
        stream = _hints(inbox.inbox_channel(member.pk), free=lambda: None)
        await next_chunk(stream)
        await asyncio.to_thread(
            in_thread, services.human_loop_reply, user=member, request_id=str(first.pk), answer="approve"
        )
        assert hints(await next_chunk(stream)) == [
            {"run_id": str(run.pk), "request_id": str(first.pk), "reason": "answer"}
        ]
        await asyncio.to_thread(in_thread, services.run_cancel, run=run)  # q2 is closed with the run
        assert hints(await next_chunk(stream)) == [{"run_id": str(run.pk), "reason": "event"}]
        await stream.aclose()

    run_scenario(scenario)


def test_a_batch_of_a_run_that_never_asked_publishes_no_hint_and_costs_no_query(
    api_as, member, monkeypatch, django_assert_num_queries
):
    run = start_run(api_as, member)
    store(run, NewEvent("run.started", {}))
    sent = []
    monkeypatch.setattr(inbox, "publish_hint", lambda *args, **kwargs: sent.append(args))
    batch = [NewEvent("message.delta", {"text": "x"}) for _ in range(5)] + [
        NewEvent("run.finished", {"status": "succeeded"})
    ]
    with django_assert_num_queries(5):  # BEGIN, lock the run, insert the events, update the run, COMMIT
        store(run, *batch)
    assert sent == []


def test_a_resync_and_a_quiet_re_check_tell_the_page_to_read_its_list(local, member, monkeypatch):
    monkeypatch.setattr(live, "RECHECK_SWEEPS", (2, 2))

    async def scenario():
        channel = inbox.inbox_channel(member.pk)
        stream = _hints(channel, free=lambda: None)
        await next_chunk(stream)
        local.resync_all()  # what a re-established subscription does
        assert await next_chunk(stream) == RESYNC_HINT
        local.sweep()  # the stream counts as active until here
        local.sweep()
        assert await next_chunk(stream) == KEEP_ALIVE
        local.sweep()  # the second quiet sweep: a re-check, which for a list is a hint
        assert await next_chunk(stream) == RESYNC_HINT + KEEP_ALIVE
        await stream.aclose()
        assert not local.listeners

    run_scenario(scenario)


def test_hints_cross_processes_through_redis_and_a_lost_subscription_sends_a_resync(
    hub, api_as, member, settings
):
    assert settings.EVENTSTREAM_REDIS
    run = start_run(api_as, member)

    async def scenario():
        channel = inbox.inbox_channel(member.pk)
        stream = _hints(channel, free=lambda: None)
        await next_chunk(stream)
        await until_listening(hub, channel)
        await asyncio.to_thread(in_thread, ask, run)
        assert hints(await next_chunk(stream)) == [{"run_id": str(run.pk), "reason": "event"}]
        assert await asyncio.to_thread(kill_subscribers) >= 1
        assert await next_chunk(stream) == RESYNC_HINT  # resubscribed: whatever was missed, read the list
        await stream.aclose()

    run_scenario(scenario)
