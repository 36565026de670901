"""An app's settings in layers: app default < project < user; checked against the app's schema; secrets
are write-only (never in a response, kept when a PUT leaves them out)."""

import json

import pytest

from agents.app_settings import effective_settings, public_settings, run_deadline_s
from agents.models import Action, AppSetting
from tests.factories import AppFactory, AppSettingFactory, ProjectFactory, grant

pytestmark = pytest.mark.django_db

SECRET = "sk-very-secret-value-0042"
SCHEMA = {
    "type": "object",
    "properties": {
        "model": {"enum": ["a", "b"]},
        "temperature": {"type": "number"},
        "style": {"type": "string"},
        "api_key": {"type": "string", "writeOnly": True, "minLength": 5},
        "run_deadline_s": {"type": "integer", "minimum": 1},
        "limits": {
            "type": "object",
            "properties": {"tokens": {"type": "integer"}},
            "additionalProperties": False,
        },
    },
    "required": ["model"],
    "additionalProperties": False,
}


@pytest.fixture
def app(owner, member, department):
    """The owner configures the app; owner and member use it; the project belongs to their department."""
    app = AppFactory(slug="writer", settings_schema=SCHEMA)
    grant(owner, Action.CONFIGURE, app)
    grant(department, Action.USE, app)
    ProjectFactory(slug="apollo", department=department)
    return app


def put(api, scope, values, project=None):
    query = f"?scope={scope}" + (f"&project={project}" if project else "")
    return api.put(f"/api/apps/writer/settings{query}", {"values": values}, format="json")


def assert_no_secret(response):
    assert SECRET not in json.dumps(response.json()), response.json()


def test_a_user_setting_overrides_the_project_which_overrides_the_app_default(api_as, app, owner, member):
    assert put(api_as(owner), "app", {"model": "a", "temperature": 0.1, "style": "plain"}).status_code == 200
    assert put(api_as(owner), "project", {"temperature": 0.5, "style": "bold"}, "apollo").status_code == 200
    assert put(api_as(member), "user", {"style": "mine"}).status_code == 200
    body = api_as(member).get("/api/apps/writer/settings/effective?project=apollo").json()
    assert body["values"] == {"model": "a", "temperature": 0.5, "style": "mine"}
    assert body["sources"] == {"model": "app", "temperature": "project", "style": "user"}
    without_project = api_as(member).get("/api/apps/writer/settings/effective").json()
    assert without_project["values"] == {"model": "a", "temperature": 0.1, "style": "mine"}


def test_the_merge_is_shallow_an_object_replaces_the_one_below_whole(app, member):
    AppSettingFactory(app=app, values={"limits": {"tokens": 10}, "model": "a"})
    AppSettingFactory(app=app, scope="user", user=member, values={"limits": {}})
    assert effective_settings(app=app, user=member) == {"limits": {}, "model": "a"}


def test_a_value_outside_the_schema_is_a_400_naming_the_field(api_as, app, owner):
    response = put(api_as(owner), "app", {"model": "x", "limits": {"tokens": "many"}})
    assert response.status_code == 400
    detail = response.json()["error"]["detail"]
    assert detail == {
        "model": ["'x' is not one of ['a', 'b']"],
        "limits.tokens": ["'many' is not of type 'integer'"],
    }
    assert not AppSetting.objects.exists()


def test_an_unknown_key_is_refused_by_name_when_the_schema_allows_no_others(api_as, app, owner):
    response = put(api_as(owner), "app", {"model": "a", "colour": "red", "limits": {"depth": 1}})
    assert response.status_code == 400
    assert response.json()["error"]["detail"] == {
        "colour": ["Not a setting of this app."],
        "limits.depth": ["Not a setting of this app."],
    }


def test_an_app_without_a_schema_takes_only_an_empty_object(api_as, owner):
    app = AppFactory(slug="plain")
    grant(owner, Action.CONFIGURE, app)
    refused = api_as(owner).put("/api/apps/plain/settings?scope=app", {"values": {"x": 1}}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["detail"] == {"x": ["This app takes no settings."]}
    empty = api_as(owner).put("/api/apps/plain/settings?scope=app", {"values": {}}, format="json")
    assert empty.status_code == 200


def test_a_layer_may_leave_a_required_key_to_another_layer(api_as, app, member):
    response = put(api_as(member), "user", {"temperature": 1.5})
    assert response.status_code == 200, response.json()


def test_a_secret_is_never_returned_and_survives_a_put_that_leaves_it_out(api_as, app, owner, member):
    api = api_as(owner)
    first = put(api, "app", {"model": "a", "api_key": SECRET})
    assert first.status_code == 200
    assert_no_secret(first)
    assert (first.json()["values"], first.json()["secrets_set"]) == ({"model": "a"}, ["api_key"])
    second = put(api, "app", {"model": "b"})
    assert_no_secret(second)
    assert second.json()["secrets_set"] == ["api_key"]
    assert AppSetting.objects.get(scope="app").values == {"model": "b", "api_key": SECRET}
    for response in (
        api.get("/api/apps/writer/settings?scope=app"),
        api_as(member).get("/api/apps/writer/settings?scope=app"),
        api_as(member).get("/api/apps/writer/settings/effective"),
        api.get("/api/apps/writer/"),
    ):
        assert response.status_code == 200
        assert_no_secret(response)
    assert api_as(member).get("/api/apps/writer/settings/effective").json()["secrets_set"] == ["api_key"]


def test_a_secret_given_as_null_is_removed(api_as, app, owner):
    put(api_as(owner), "app", {"model": "a", "api_key": SECRET})
    response = put(api_as(owner), "app", {"model": "a", "api_key": None})
    assert response.json()["secrets_set"] == []
    assert AppSetting.objects.get(scope="app").values == {"model": "a"}


def test_an_invalid_secret_is_refused_without_repeating_its_value(api_as, app, owner):
    response = put(api_as(owner), "app", {"api_key": "sk-1"})  # too short
    assert response.status_code == 400
    assert "sk-1" not in json.dumps(response.json())
    assert list(response.json()["error"]["detail"]) == ["api_key"]


def test_public_settings_drop_the_secrets_and_name_them():
    assert public_settings(SCHEMA, {"model": "a", "api_key": SECRET}) == ({"model": "a"}, ["api_key"])


def test_who_may_write_which_layer(api_as, app, owner, member, outsider):
    assert put(api_as(member), "app", {"model": "a"}).status_code == 403
    assert put(api_as(member), "project", {"model": "a"}, "apollo").status_code == 403
    assert put(api_as(member), "user", {"model": "a"}).status_code == 200
    invisible = put(api_as(outsider), "user", {"model": "a"})
    assert (invisible.status_code, invisible.json()["error"]["code"]) == (404, "app_not_found")
    assert put(api_as(owner), "project", {"model": "a"}, "apollo").status_code == 200


def test_a_project_setting_needs_the_project_to_be_mine(api_as, app, owner, department):
    from tests.factories import DepartmentFactory

    ProjectFactory(slug="elsewhere", department=DepartmentFactory(slug="other"))
    response = put(api_as(owner), "project", {"model": "a"}, "elsewhere")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "project_not_found")


def test_reading_a_layer_needs_the_right_to_write_it_except_the_app_default(api_as, app, owner, member):
    AppSettingFactory(app=app, values={"model": "a", "api_key": SECRET})
    seen = api_as(member).get("/api/apps/writer/settings?scope=app")
    assert seen.status_code == 200
    assert seen.json()["values"] == {"model": "a"}
    project = api_as(member).get("/api/apps/writer/settings?scope=project&project=apollo")
    assert project.status_code == 403
    mine = api_as(member).get("/api/apps/writer/settings?scope=user").json()
    assert (mine["values"], mine["updated_at"], mine["schema"]) == ({}, None, SCHEMA)


def test_a_user_layer_is_each_users_own(api_as, app, owner, member):
    put(api_as(member), "user", {"style": "members"})
    put(api_as(owner), "user", {"style": "owners"})
    assert api_as(member).get("/api/apps/writer/settings?scope=user").json()["values"] == {"style": "members"}
    body = api_as(owner).get("/api/apps/writer/settings?scope=user").json()
    assert (body["values"], body["updated_by"]) == ({"style": "owners"}, "owner")


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("", "scope"),
        ("?scope=everyone", "scope"),
        ("?scope=project", "project"),
        ("?scope=app&project=apollo", "project"),
        ("?scope=project&project=not%20a%20slug", "project"),
        ("?scope=project&project=%00", "project"),
    ],
)
def test_a_bad_scope_or_project_parameter_is_a_400_naming_it(api_as, app, owner, query, name):
    response = api_as(owner).get(f"/api/apps/writer/settings{query}")
    assert response.status_code == 400
    assert name in response.json()["error"]["detail"]


@pytest.mark.parametrize("body", [{"values": []}, {"values": "x"}, {}, []])
def test_a_malformed_put_body_is_a_400(api_as, app, owner, body):
    response = api_as(owner).put("/api/apps/writer/settings?scope=app", body, format="json")
    assert response.status_code == 400


def test_run_deadline_s_lowers_the_apps_deadline_and_never_raises_it(settings):
    settings.RUN_DEADLINE_S = 600
    app = AppFactory.build(run_deadline_s=None)
    assert run_deadline_s(app, {"run_deadline_s": 30}) == 30
    assert run_deadline_s(app, {"run_deadline_s": 6000}) == 600
    assert run_deadline_s(app, {"run_deadline_s": True}) == 600
    assert run_deadline_s(AppFactory.build(run_deadline_s=100), {"run_deadline_s": 200}) == 100


def test_the_settings_endpoints_are_in_the_openapi_schema(api_as, superuser):
    paths = api_as(superuser).get("/api/schema/?format=json").json()["paths"]
    assert {"get", "put"} <= set(paths["/api/apps/{slug}/settings"])
    assert "get" in paths["/api/apps/{slug}/settings/effective"]
    assert {"get", "post"} <= set(paths["/api/projects/"])
