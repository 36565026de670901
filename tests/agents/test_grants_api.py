"""App grants in the policy API (/api/rbac/grants/): an action from the list, an app by slug or null for
every app, a duplicate a 409; admins only."""

import pytest

from agents.access import apps_for
from agents.models import Action, AppGrant
from tests.factories import AppFactory, AppGrantFactory, RoleBindingFactory, RoleFactory, staff_with

pytestmark = pytest.mark.django_db

GRANTS = "/api/rbac/grants/"


@pytest.fixture
def admin_api(api_as, superuser):
    return api_as(superuser)


def test_a_grant_on_one_app_gives_its_role_holders_that_app(admin_api, member):
    app, other = AppFactory(slug="reports"), AppFactory(slug="other")
    role = RoleFactory(slug="readers")
    RoleBindingFactory(role=role, user=member)
    created = admin_api.post(GRANTS, {"role": "readers", "action": "app.use", "app": "reports"})
    assert created.status_code == 201, created.content
    assert created.json() | {"id": 0, "created_at": ""} == {
        "id": 0,
        "role": "readers",
        "action": "app.use",
        "app": "reports",
        "created_by": "root",
        "created_at": "",
    }
    assert list(apps_for(member, Action.USE)) == [app]
    assert other not in apps_for(member, Action.SEE)


def test_a_grant_with_a_null_app_covers_every_app(admin_api, member):
    apps = [AppFactory(slug="a"), AppFactory(slug="b")]
    RoleBindingFactory(role=RoleFactory(slug="everyone"), user=member)
    created = admin_api.post(GRANTS, {"role": "everyone", "action": "app.see", "app": None}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["app"] is None
    assert set(apps_for(member, Action.SEE)) == set(apps)


@pytest.mark.parametrize("app", ["reports", None])
def test_the_same_grant_twice_is_a_409_and_one_row(admin_api, app):
    AppFactory(slug="reports")
    RoleFactory(slug="readers")
    body = {"role": "readers", "action": "app.use", "app": app}
    assert admin_api.post(GRANTS, body, format="json").status_code == 201
    again = admin_api.post(GRANTS, body, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate_grant"
    assert AppGrant.objects.count() == 1


def test_an_unknown_action_role_or_app_is_a_400_naming_each(admin_api):
    response = admin_api.post(GRANTS, {"role": "ghost", "action": "app.fly", "app": "nowhere"})
    assert response.status_code == 400
    assert set(response.json()["error"]["detail"]) == {"role", "action", "app"}
    assert not AppGrant.objects.exists()


def test_grants_are_filtered_by_role_app_and_action(admin_api):
    app = AppFactory(slug="reports")
    readers, writers = RoleFactory(slug="readers"), RoleFactory(slug="writers")
    see = AppGrantFactory(role=readers, action=Action.SEE, app=app)
    use = AppGrantFactory(role=writers, action=Action.USE, app=app)
    every = AppGrantFactory(role=writers, action=Action.USE, app=None)

    def ids(query):
        response = admin_api.get(GRANTS, query)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids({}) == {see.pk, use.pk, every.pk}
    assert ids({"role": "writers"}) == {use.pk, every.pk}
    assert ids({"app": "reports"}) == {see.pk, use.pk}
    assert ids({"action": "app.see"}) == {see.pk}
    assert admin_api.get(GRANTS, {"action": "app.fly"}).json()["error"]["detail"] == {
        "action": ["Must be one of: app.configure, app.see, app.use, prompt.edit, run.view_all."]
    }


def test_a_grant_is_read_and_revoked_by_id(admin_api, member):
    app = AppFactory(slug="reports")
    role = RoleFactory(slug="readers")
    RoleBindingFactory(role=role, user=member)
    grant = AppGrantFactory(role=role, action=Action.USE, app=app)
    assert admin_api.get(f"{GRANTS}{grant.pk}/").json()["app"] == "reports"
    assert admin_api.delete(f"{GRANTS}{grant.pk}/").status_code == 204
    assert admin_api.get(f"{GRANTS}{grant.pk}/").status_code == 404
    assert list(apps_for(member, Action.SEE)) == []


def test_grants_need_the_grant_model_permissions(api_as, member, api):
    RoleFactory(slug="readers")
    body = {"role": "readers", "action": "app.use", "app": None}
    assert api.get(GRANTS).status_code == 401
    assert api_as(member).post(GRANTS, body, format="json").status_code == 403
    viewer = staff_with("agents.view_appgrant", username="viewer")
    assert api_as(viewer).get(GRANTS).status_code == 200
    assert api_as(viewer).post(GRANTS, body, format="json").status_code == 403
    granter = staff_with("agents.add_appgrant", username="granter")
    assert api_as(granter).post(GRANTS, body, format="json").status_code == 201
    assert api_as(granter).get(GRANTS).status_code == 403
