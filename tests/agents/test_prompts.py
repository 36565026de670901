"""Prompt versions: saved once, numbered per app, never changed; rollback is activating an older one, and
every move is in the history. New runs start with the active version, and the executor receives it."""

import threading
import time

import pytest
from django.db import connection

from agents.models import Action, PromptActivation, PromptVersion
from agents.prompts import (
    FIRST_VERSION_REASON,
    PARAMETERS_MAX_BYTES,
    TEXT_MAX,
    AlreadyActive,
    InvalidPrompt,
    prompt_activate,
    prompt_diff,
    prompt_version_create,
)
from core.errors import NotFound
from run_queue.claims import claim_batch
from runs.models import Run, RunEvent, RunStatus
from runs.orchestrator import RunHandler
from tests.factories import AppFactory, ExecutorFactory, PromptVersionFactory, grant

TEXTS = ["You are the first prompt.", "You are the second prompt.", "You are the third prompt."]


@pytest.fixture
def app(db):
    return AppFactory(slug="writer", playbook="demo")


@pytest.fixture
def editor(owner, app):
    grant(owner, Action.PROMPT_EDIT, app)
    return owner


def prompts_url(app, tail=""):
    return f"/api/apps/{app.slug}/prompts/{tail}"


def save(api, app, text, **fields):
    response = api.post(prompts_url(app), {"text": text, **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def activate(api, app, number, reason):
    return api.post(prompts_url(app, f"{number}/activate"), {"reason": reason}, format="json")


def test_rollback_makes_an_older_version_active_and_new_runs_start_with_it_on_the_executor(
    api_as, editor, app, executor
):
    real = ExecutorFactory(name="real", base_url=executor.base_url, token=executor.token, read_timeout_s=5)
    app.executor = real
    app.save()
    grant(editor, Action.USE, app)
    api = api_as(editor)
    saved = [save(api, app, text, message=f"step {n}") for n, text in enumerate(TEXTS, 1)]
    assert [version["number"] for version in saved] == [1, 2, 3]
    assert activate(api, app, 3, "Try the third.").status_code == 200

    response = activate(api, app, 1, "The third one rambles: roll back.")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["active_version"]["number"], body["active_version"]["active"]) == (1, True)
    assert (body["activation"]["version"], body["activation"]["previous"]) == (1, 3)
    moves = api.get(prompts_url(app, "activations/")).json()["results"]
    assert [(m["version"], m["previous"], m["reason"]) for m in moves] == [
        (1, 3, "The third one rambles: roll back."),
        (3, 1, "Try the third."),
        (1, None, FIRST_VERSION_REASON),
    ]
    assert {m["activated_by"] for m in moves} == {"owner"}
    assert api.get(f"/api/apps/{app.slug}/").json()["active_prompt_version"] == 1

    run_id = api.post("/api/runs/", {"app": app.slug, "input": {"delay_ms": 0}}, format="json").json()["id"]
    assert Run.objects.get(pk=run_id).prompt_version.number == 1
    [entry] = claim_batch(owner="w1", limit=1, lease_seconds=30)
    RunHandler().handle(entry)
    assert Run.objects.get(pk=run_id).status == RunStatus.WAITING_HUMAN  # the demo asks; it has spoken
    # What the executor says it was started with: the version in its run.started, the text in its words.
    events = RunEvent.objects.filter(run_id=run_id).order_by("seq")
    started = events.get(type="run.started").data
    said = "".join(e.data["text"] for e in events.filter(type="message.delta", data__message_id="m1"))
    assert started["prompt_version"] == 1
    assert said == f"I will work on: {TEXTS[0]}"


def test_the_history_lists_versions_newest_first_with_the_active_one_marked(api_as, editor, app):
    api = api_as(editor)
    for text in TEXTS:
        save(api, app, text, parameters={"temperature": 0.2}, message="why")
    results = api.get(prompts_url(app)).json()["results"]
    assert [(v["number"], v["active"]) for v in results] == [(3, False), (2, False), (1, True)]
    assert results[0] == {
        "number": 3,
        "text": TEXTS[2],
        "parameters": {"temperature": 0.2},
        "message": "why",
        "author": "owner",
        "created_at": results[0]["created_at"],
        "active": False,
    }


def test_the_history_is_paginated(api_as, editor, app):
    api = api_as(editor)
    for text in TEXTS:
        save(api, app, text)
    page = api.get(prompts_url(app) + "?page_size=2&page=2").json()
    assert (page["count"], [v["number"] for v in page["results"]]) == (3, [1])


def test_a_version_shows_its_diff_against_the_active_one(api_as, editor, app):
    api = api_as(editor)
    save(api, app, "line one\nline two\n")
    save(api, app, "line one\nline 2\n")
    other = api.get(prompts_url(app, "2/")).json()
    assert other["active_version"] == 1
    assert other["diff_against_active"] == "--- v1\n+++ v2\n@@ -1,2 +1,2 @@\n line one\n-line two\n+line 2"
    active = api.get(prompts_url(app, "1/")).json()
    assert (active["active"], active["diff_against_active"]) == (True, "")


def test_a_version_shows_its_diff_against_any_other_when_asked(api_as, editor, app):
    api = api_as(editor)
    for text in ("one\n", "two\n", "three\n"):
        save(api, app, text)
    default = api.get(prompts_url(app, "3/")).json()
    assert (default["against"], default["diff"]) == (1, default["diff_against_active"])
    asked = api.get(prompts_url(app, "3/"), {"against": 2}).json()
    assert (asked["against"], asked["diff"]) == (2, "--- v2\n+++ v3\n@@ -1 +1 @@\n-two\n+three")
    assert asked["diff_against_active"] == "--- v1\n+++ v3\n@@ -1 +1 @@\n-one\n+three"
    itself = api.get(prompts_url(app, "2/"), {"against": 2}).json()
    assert (itself["against"], itself["diff"]) == (2, "")
    active = api.get(prompts_url(app, "1/"), {"against": 3}).json()
    assert active["diff"] == "--- v3\n+++ v1\n@@ -1 +1 @@\n-three\n+one"


@pytest.mark.parametrize("against", ["4", "0", "x", "١", f"{2**31}", "-1"])
def test_diffing_against_a_missing_or_malformed_version_is_a_400_naming_it(api_as, editor, app, against):
    api = api_as(editor)
    save(api, app, "one")
    response = api.get(prompts_url(app, "1/"), {"against": against})
    assert response.status_code == 400
    assert list(response.json()["error"]["detail"]) == ["against"]


def test_a_missing_version_is_a_404_naming_it(api_as, editor, app):
    api = api_as(editor)
    save(api, app, "only one")
    responses = [api.get(prompts_url(app, tail)) for tail in ["2/", "0/", f"{2**31}/", f"{10**30}/"]]
    responses.append(api.post(prompts_url(app, "2/activate"), {"reason": "x"}, format="json"))
    for response in responses:
        assert response.status_code == 404, response.request
        assert response.json()["error"]["code"] == "prompt_version_not_found"


def test_saving_with_activate_makes_it_active_with_the_reason(api_as, editor, app):
    api = api_as(editor)
    save(api, app, "first")
    second = save(api, app, "second", activate=True, reason="Ship it.")
    assert second["active"] is True
    assert PromptActivation.objects.filter(app=app).order_by("-id").first().reason == "Ship it."
    assert save(api, app, "third")["active"] is False


def test_activating_the_active_version_is_a_409(api_as, editor, app):
    api = api_as(editor)
    save(api, app, "first")
    response = activate(api, app, 1, "again")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_active"
    assert PromptActivation.objects.filter(app=app).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "x" * (TEXT_MAX + 1)}, "text"),
        ({"text": "ok", "message": "m" * 501}, "message"),
        ({"text": "ok", "parameters": [1, 2]}, "parameters"),
        ({"text": "ok", "parameters": {"big": "x" * PARAMETERS_MAX_BYTES}}, "parameters"),
        ({"text": "ok", "parameters": None}, "parameters"),
        ({"text": "ok", "activate": "perhaps"}, "activate"),
        ({"message": "no text"}, "text"),
    ],
)
def test_a_bad_version_is_a_400_naming_the_field_and_saves_nothing(api_as, editor, app, body, field):
    response = api_as(editor).post(prompts_url(app), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["detail"]
    assert not PromptVersion.objects.filter(app=app).exists()


@pytest.mark.parametrize("reason", ["", "   ", "r" * 501, None])
def test_an_activation_needs_a_reason_of_1_to_500_characters(api_as, editor, app, reason):
    api = api_as(editor)
    save(api, app, "first")
    save(api, app, "second")
    response = api.post(prompts_url(app, "2/activate"), {"reason": reason}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["detail"]
    assert PromptActivation.objects.filter(app=app).count() == 1


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("tail", ["", "1/", "1/activate", "activations/"])
def test_versions_cannot_be_edited_or_deleted_through_the_api(api_as, editor, app, method, tail):
    api = api_as(editor)
    save(api, app, "immutable")
    response = getattr(api, method)(prompts_url(app, tail), {"text": "changed"}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert PromptVersion.objects.get(app=app).text == "immutable"


EVERY_URL = [
    ("get", ""),
    ("post", ""),
    ("get", "1/"),
    ("post", "1/activate"),
    ("get", "activations/"),
]


@pytest.mark.parametrize(("method", "tail"), EVERY_URL)
def test_an_app_i_may_not_see_is_the_same_404_as_a_missing_one(api_as, outsider, app, method, tail):
    PromptVersionFactory(app=app, number=1)
    api = api_as(outsider)
    hidden = getattr(api, method)(prompts_url(app, tail), {"text": "t", "reason": "r"}, format="json")
    missing = getattr(api, method)(f"/api/apps/no-such-app/prompts/{tail}", {"reason": "r"}, format="json")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    assert hidden.json()["error"]["code"] == "app_not_found"


@pytest.mark.parametrize(("method", "tail"), [("post", ""), ("post", "1/activate")])
def test_seeing_an_app_without_prompt_edit_reads_but_may_not_write(api_as, member, app, method, tail):
    grant(member, Action.USE, app)  # use implies see, not prompt.edit
    PromptVersionFactory(app=app, number=1)
    PromptVersionFactory(app=app, number=2)
    api = api_as(member)
    assert api.get(prompts_url(app)).status_code == 200
    assert api.get(prompts_url(app, "activations/")).status_code == 200
    response = getattr(api, method)(prompts_url(app, tail), {"text": "t", "reason": "r"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_allowed"
    assert PromptVersion.objects.filter(app=app).count() == 2


def test_a_superuser_may_save_and_activate_without_grants(api_as, superuser, app):
    api = api_as(superuser)
    save(api, app, "first")
    save(api, app, "second")
    assert activate(api, app, 2, "root says so").status_code == 200


def test_an_edit_grant_on_another_app_gives_nothing_here(api_as, owner, app):
    grant(owner, Action.PROMPT_EDIT, AppFactory(slug="elsewhere"))
    assert api_as(owner).post(prompts_url(app), {"text": "t"}, format="json").status_code == 404


def test_an_apps_first_version_becomes_active_by_itself(app, owner):
    first = prompt_version_create(app=app, text="hello", author=owner)
    app.refresh_from_db()
    assert app.active_prompt_id == first.pk
    activation = PromptActivation.objects.get(app=app)
    assert (activation.version_id, activation.previous_id, activation.activated_by) == (first.pk, None, owner)
    prompt_version_create(app=app, text="hello again", author=owner)
    app.refresh_from_db()
    assert app.active_prompt_id == first.pk


def test_a_version_of_another_app_cannot_be_activated_here(app, owner):
    prompt_version_create(app=app, text="mine", author=owner)
    foreign = prompt_version_create(app=AppFactory(slug="other"), text="theirs", author=owner)
    with pytest.raises(NotFound):
        prompt_activate(app=app, version=foreign, user=owner, reason="sneaky")
    app.refresh_from_db()
    assert app.active_prompt.text == "mine"


def test_the_service_refuses_what_the_database_could_not_store(app, owner):
    with pytest.raises(InvalidPrompt) as refused:
        prompt_version_create(app=app, text="a\x00b", parameters={"k\x00": 1}, message="m", author=owner)
    assert set(refused.value.detail) == {"text", "parameters"}
    version = prompt_version_create(app=app, text="fine", author=owner)
    with pytest.raises(AlreadyActive):
        prompt_activate(app=app, version=version, user=owner, reason="again")


def test_the_diff_is_labelled_with_the_version_numbers(app):
    old = PromptVersion(app=app, number=4, text="a\nb")
    new = PromptVersion(app=app, number=7, text="a\nc")
    assert prompt_diff(old=old, new=new) == "--- v4\n+++ v7\n@@ -1,2 +1,2 @@\n a\n-b\n+c"
    assert prompt_diff(old=old, new=old) == ""


def test_the_diff_of_a_long_prompt_numbers_its_hunk_as_in_the_whole_text(app):
    lines = [f"line {n}" for n in range(1, 3001)]
    edited = [*lines[:1499], "edited", *lines[1500:]]
    diff = prompt_diff(
        old=PromptVersion(number=1, text="\n".join(lines)),
        new=PromptVersion(number=2, text="\n".join(edited)),
    )
    assert diff.splitlines()[:3] == ["--- v1", "+++ v2", "@@ -1497,7 +1497,7 @@"]
    assert [line for line in diff.splitlines()[3:] if line[0] in "-+"] == ["-line 1500", "+edited"]


def test_the_diff_of_repetitive_texts_at_the_limit_takes_milliseconds_not_minutes(app):
    """difflib alone took 70 s on these two texts: the changed part is shown wholly replaced instead."""
    old = "\n".join(f"{n % 199:03}" for n in range(25_000))
    new = "\n".join(f"{n * 7 % 199:03}" for n in range(25_000))
    started = time.perf_counter()
    diff = prompt_diff(old=PromptVersion(number=1, text=old), new=PromptVersion(number=2, text=new))
    assert time.perf_counter() - started < 2
    body = diff.splitlines()[3:]
    assert [line[1:] for line in body if line[0] in "- "] == old.splitlines()
    assert [line[1:] for line in body if line[0] in "+ "] == new.splitlines()


def test_an_activation_empties_the_cache_the_run_start_reads(api_as, editor, app):
    from agents.selectors import app_for_use

    grant(editor, Action.USE, app)
    prompt_version_create(app=app, text="first", author=editor)
    second = prompt_version_create(app=app, text="second", author=editor)
    assert app_for_use(user=editor, slug=app.slug).active_prompt.number == 1  # now cached
    prompt_activate(app=app, version=second, user=editor, reason="move")
    assert app_for_use(user=editor, slug=app.slug).active_prompt_id == second.pk


@pytest.mark.django_db(transaction=True)
def test_versions_saved_at_the_same_time_get_distinct_consecutive_numbers(owner):
    app = AppFactory(slug="busy")
    prompt_version_create(app=app, text="v1", author=owner)
    writers = 6
    barrier = threading.Barrier(writers)
    numbers, errors = [], []

    def write(n):
        try:
            barrier.wait(timeout=10)
            numbers.append(prompt_version_create(app=app, text=f"from writer {n}", author=owner).number)
        except Exception as exc:  # a failure in a thread must fail the test, not vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(numbers) == list(range(2, writers + 2))
    assert sorted(PromptVersion.objects.filter(app=app).values_list("number", flat=True)) == list(
        range(1, writers + 2)
    )
