"""A run starts in a project with the effective settings (app default < project < user): it records them
without secrets, its deadline is lowered by run_deadline_s, and the executor receives them, secrets
included (read from the current rows by the worker, never from the run)."""

import hashlib
import json
from datetime import timedelta

import pytest

from run_queue.claims import claim_batch
from runs.models import Run, Session
from runs.orchestrator import RunHandler
from tests.factories import AppFactory, AppSettingFactory, DepartmentFactory, ExecutorFactory, ProjectFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-very-secret-value-0042"
SCHEMA = {
    "type": "object",
    "properties": {
        "model": {"enum": ["a", "b"]},
        "style": {"type": "string"},
        "api_key": {"type": "string", "writeOnly": True},
        "run_deadline_s": {"type": "integer", "minimum": 1},
    },
    "required": ["model"],
    "additionalProperties": False,
}


@pytest.fixture
def app(department, settings):
    settings.RUN_DEADLINE_S = 600
    app = AppFactory(slug="writer", settings_schema=SCHEMA, playbook="instant")
    ProjectFactory(slug="apollo", department=department)
    return app


@pytest.fixture
def layers(app, member):
    AppSettingFactory(app=app, values={"model": "a", "style": "plain", "api_key": SECRET})
    AppSettingFactory(app=app, scope="project", project=app_project(), values={"style": "bold"})
    AppSettingFactory(app=app, scope="user", user=member, values={"model": "b"})


def app_project():
    from agents.models import Project

    return Project.objects.get(slug="apollo")


def start(api, **body):
    return api.post("/api/runs/", {"app": "writer", **body}, format="json")


def assert_no_secret(response):
    assert SECRET not in json.dumps(response.json()), response.json()


def test_a_run_records_the_merged_settings_and_its_project_without_secrets(api_as, member, layers):
    api = api_as(member)
    response = start(api, project="apollo")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["project"] == "apollo"
    assert body["settings"] == {"model": "b", "style": "bold", "$secrets": ["api_key"]}
    assert body["prompt_version"] is None
    run = Run.objects.get(pk=body["id"])
    assert (run.project.slug, run.session.project.slug) == ("apollo", "apollo")
    row = Run.objects.filter(pk=run.pk).values().get()
    assert SECRET not in json.dumps(row, default=str)
    for answer in (
        response,
        api.get(f"/api/runs/{run.pk}/"),
        api.get("/api/runs/"),
        api.get(f"/api/runs/{run.pk}/events?after=0"),
        api.post(f"/api/runs/{run.pk}/cancel"),
    ):
        assert answer.status_code in {200, 201}
        assert_no_secret(answer)
    assert api.get("/api/runs/").json()["results"][0]["project"] == "apollo"


def test_the_run_list_and_detail_show_the_prompt_versions_number(api_as, member, app):
    from agents.models import App
    from agents.selectors import config_cache_clear
    from tests.factories import PromptVersionFactory

    AppSettingFactory(app=app, values={"model": "a"})
    version = PromptVersionFactory(app=app, number=7)
    App.objects.filter(pk=app.pk).update(active_prompt=version)
    config_cache_clear()
    api = api_as(member)
    run_id = start(api).json()["id"]
    assert api.get(f"/api/runs/{run_id}/").json()["prompt_version"] == 7
    assert api.get("/api/runs/").json()["results"][0]["prompt_version"] == 7


def test_a_run_without_a_project_takes_the_app_and_user_layers(api_as, member, layers):
    body = start(api_as(member)).json()
    assert body["project"] is None
    assert body["settings"] == {"model": "b", "style": "plain", "$secrets": ["api_key"]}


def test_a_project_i_may_not_work_in_is_a_404(api_as, outsider, app):
    other = ProjectFactory(slug="hidden", department=DepartmentFactory(slug="other"))
    for slug in (other.slug, "no-such-project"):
        response = start(api_as(outsider), project=slug)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "project_not_found")
    assert not Run.objects.exists()


def test_a_session_continues_in_its_project_and_refuses_another(api_as, member, department, layers):
    api = api_as(member)
    first = start(api, project="apollo").json()
    Run.objects.filter(pk=first["id"]).update(status="succeeded")
    again = start(api, session_id=first["session_id"])
    assert again.status_code == 201, again.json()
    assert again.json()["project"] == "apollo"
    ProjectFactory(slug="gemini", department=department)
    Run.objects.filter(pk=again.json()["id"]).update(status="succeeded")
    other = start(api, session_id=first["session_id"], project="gemini")
    assert (other.status_code, other.json()["error"]["code"]) == (409, "session_project_mismatch")
    assert Session.objects.get(pk=first["session_id"]).project.slug == "apollo"


def test_a_session_without_a_project_refuses_one(api_as, member, layers):
    api = api_as(member)
    first = start(api).json()
    Run.objects.filter(pk=first["id"]).update(status="succeeded")
    response = start(api, session_id=first["session_id"], project="apollo")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "session_project_mismatch")


def test_a_required_setting_no_layer_gives_refuses_the_start(api_as, member, app):
    AppSettingFactory(app=app, values={"style": "plain"})
    response = start(api_as(member))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "settings_invalid"
    assert response.json()["error"]["detail"] == {"model": ["This setting is required."]}
    assert not Run.objects.exists()


@pytest.mark.parametrize(("setting", "expected"), [(30, 30), (6000, 600), (None, 600)])
def test_run_deadline_s_lowers_the_deadline_but_never_raises_it(api_as, member, app, setting, expected):
    values = {"model": "a"} | ({"run_deadline_s": setting} if setting else {})
    AppSettingFactory(app=app, values=values)
    run = Run.objects.get(pk=start(api_as(member)).json()["id"])
    assert abs((run.deadline - run.created_at) - timedelta(seconds=expected)) < timedelta(seconds=5)


def test_an_app_without_a_settings_schema_starts_without_reading_settings(
    api_as, member, db, django_assert_num_queries
):
    """POST /api/runs/ with a warm app cache: 6 statements (the use check, the active-run lock and count,
    the savepoint pair around one insert of every row). An app without a schema takes no settings, so its
    start reads none; one with a schema reads its layers in one more statement."""
    AppFactory(slug="plain")
    AppFactory(
        slug="configurable", settings_schema={"type": "object", "properties": {"tone": {"type": "string"}}}
    )
    api = api_as(member)
    for slug, expected, reads in [("plain", START_QUERIES, 0), ("configurable", START_QUERIES + 1, 1)]:
        assert api.post("/api/runs/", {"app": slug}, format="json").status_code == 201  # warms the caches
        with django_assert_num_queries(expected) as queries:
            assert api.post("/api/runs/", {"app": slug}, format="json").status_code == 201
        assert len([q for q in queries.captured_queries if "agents_appsetting" in q["sql"]]) == reads


START_QUERIES = 6


def test_the_executor_receives_the_settings_with_the_secret(api_as, member, layers, app, executor):
    real = ExecutorFactory(name="real", base_url=executor.base_url, token=executor.token, read_timeout_s=5)
    app.executor = real
    app.save()
    run_id = start(api_as(member), project="apollo").json()["id"]
    [entry] = claim_batch(owner="w1", limit=1, lease_seconds=30)
    RunHandler().handle(entry)
    assert Run.objects.get(pk=run_id).status == "succeeded"
    status = executor.http("GET", f"/v1/runs/{run_id}").json()
    sent = {"model": "b", "style": "bold", "api_key": SECRET}
    canonical = json.dumps(sent, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert status["settings_keys"] == ["api_key", "model", "style"]
    assert status["settings_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert SECRET not in json.dumps(status)
    assert SECRET not in executor.log()


def test_the_worker_sends_the_secret_as_it_is_now_not_as_it_was(api_as, member, layers, app, executor):
    from agents.models import AppSetting

    real = ExecutorFactory(name="real", base_url=executor.base_url, token=executor.token, read_timeout_s=5)
    app.executor = real
    app.save()
    run_id = start(api_as(member)).json()["id"]
    row = AppSetting.objects.get(scope="app")
    row.values = {**row.values, "api_key": "rotated"}
    row.save()
    [entry] = claim_batch(owner="w1", limit=1, lease_seconds=30)
    RunHandler().handle(entry)
    status = executor.http("GET", f"/v1/runs/{run_id}").json()
    sent = {"model": "b", "style": "plain", "api_key": "rotated"}
    canonical = json.dumps(sent, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert status["settings_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()


def test_the_reference_executor_refuses_settings_that_are_not_an_object(executor):
    body = {"run_id": "r-settings", "app": "a", "prompt": {"version": 0, "text": ""}, "input": {}}
    response = executor.http("POST", "/v1/runs", json={**body, "settings": ["x"]})
    assert response.status_code == 400
    assert "settings" in response.json()["error"]["detail"]


def test_settings_count_in_the_start_requests_size_budget(api_as, member, app, settings):
    settings.EXECUTOR_MAX_BODY_BYTES = 8192
    AppSettingFactory(app=app, values={"model": "a", "style": "x" * 3000})
    response = start(api_as(member), input={"text": "y" * 1500})
    assert (response.status_code, response.json()["error"]["code"]) == (413, "too_large")
    assert start(api_as(member), input={"text": "y" * 100}).status_code == 201
