"""The API and the executor agree on how large a run's input may be: an input the executor would refuse
(its start request over the executor's body limit) is refused by POST /api/runs/ with a 413 naming it,
and the largest input the API accepts reaches the real executor intact."""

import json
import uuid

import pytest
from django.conf import settings

from agents.executor_client import ExecutorError
from agents.models import App
from agents.selectors import prompt_payload
from executor.http import MAX_BODY_BYTES
from run_queue.models import QueueEntry
from runs.models import Run
from runs.validation import input_budget
from tests.executor_support import executor_fixture
from tests.factories import AppFactory, PromptVersionFactory

executor_server = pytest.fixture(scope="module")(executor_fixture)


@pytest.fixture
def executor(executor_server):
    yield executor_server
    executor_server.reset()


@pytest.fixture
def app(db):
    app = AppFactory(slug="big", playbook="instant")
    version = PromptVersionFactory(app=app, number=1, text="You are patient. " * 100)
    App.objects.filter(pk=app.pk).update(active_prompt=version)
    app.refresh_from_db()
    return app


def input_of_size(size: int) -> dict:
    """An input whose JSON (as the executor client writes it) is exactly ``size`` bytes."""
    return {"k": "x" * (size - len(json.dumps({"k": ""})))}


def start(client, run_input):
    return client.post("/api/runs/", {"app": "big", "input": run_input}, format="json")


def start_on_executor(executor, app, run_input):
    return executor.client().start_run(
        run_id=str(uuid.uuid4()),
        app=app.slug,
        prompt=prompt_payload(app.active_prompt_id),
        input=run_input,
        agent=app.agent_spec(),
    )


def assert_too_large(response):
    assert response.status_code == 413, response.content
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert "input" in error["detail"]


def test_the_control_plane_defaults_to_the_reference_executors_body_limit():
    assert settings.EXECUTOR_MAX_BODY_BYTES == MAX_BODY_BYTES
    assert settings.API_MAX_BODY_BYTES == MAX_BODY_BYTES


def test_the_largest_input_the_api_accepts_is_accepted_by_the_executor(api_as, member, app, executor):
    response = start(api_as(member), input_of_size(input_budget(app)))
    assert response.status_code == 201, response.content
    stored = Run.objects.get(pk=response.json()["id"]).input  # what the worker will send
    assert start_on_executor(executor, app, stored).status == 201


def test_an_input_the_executor_refuses_is_refused_by_the_api_and_writes_nothing(
    api_as, member, app, executor
):
    prompt = prompt_payload(app.active_prompt_id)
    envelope = len(json.dumps({"run_id": str(uuid.uuid4()), "app": "big", "prompt": prompt}))
    run_input = input_of_size(MAX_BODY_BYTES - envelope)  # with plugins, gateway and agent: over the limit
    with pytest.raises(ExecutorError) as refused:
        start_on_executor(executor, app, run_input)
    assert refused.value.status == 413
    assert_too_large(start(api_as(member), run_input))
    assert not Run.objects.exists()
    assert not QueueEntry.objects.exists()


def test_non_ascii_input_is_measured_as_the_executor_receives_it(api_as, member, app):
    run_input = {"k": "中" * (input_budget(app) // 6 + 1)}  # 3 bytes each here, 6 ("\\u4e2d") on the wire
    assert len(json.dumps(run_input, ensure_ascii=False).encode()) < settings.API_MAX_BODY_BYTES
    assert_too_large(start(api_as(member), run_input))


def test_numbers_are_measured_as_postgresql_gives_them_back(api_as, member, app):
    run_input = {"k": [1e300] * 4000}  # 28 KB here; each comes back from jsonb as 301 digits
    assert_too_large(start(api_as(member), run_input))
