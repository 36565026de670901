"""The policy API (/api/rbac/roles, bindings, departments): admins only, by the admin's rules; input
checked field by field (400s naming them, never a 500, nothing half written); the tree refuses cycles."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.access import apps_for
from agents.models import Action
from rbac.models import Department, Role, RoleBinding
from tests.factories import (
    AppFactory,
    AppGrantFactory,
    DepartmentFactory,
    RoleBindingFactory,
    RoleFactory,
    UserFactory,
    staff_with,
)

pytestmark = pytest.mark.django_db

ROLES = "/api/rbac/roles/"
BINDINGS = "/api/rbac/bindings/"
DEPARTMENTS = "/api/rbac/departments/"


@pytest.fixture
def admin_api(api_as, superuser):
    return api_as(superuser)


def assert_invalid(response, *fields):
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "invalid"
    assert set(fields) <= set(body["detail"]), body


# --- who may ---------------------------------------------------------------------------------------


def test_anonymous_callers_get_401_in_the_error_shape(api):
    response = api.get(ROLES)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("url", [ROLES, BINDINGS, DEPARTMENTS, "/api/rbac/grants/"])
def test_a_signed_in_user_who_is_not_staff_gets_403(api_as, member, url):
    response = api_as(member).get(url)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_staff_without_the_model_permission_gets_403_even_to_read(api_as):
    clerk = staff_with("rbac.view_role")
    assert api_as(clerk).get(ROLES).status_code == 200
    assert api_as(clerk).get(BINDINGS).status_code == 403
    assert api_as(clerk).post(ROLES, {"slug": "x", "name": "X"}).status_code == 403
    assert not Role.objects.filter(slug="x").exists()


def test_a_permission_without_staff_status_is_not_enough(api_as):
    user = UserFactory(username="not-staff")
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="view_role"))
    assert api_as(user).get(ROLES).status_code == 403


def test_staff_with_binding_permissions_manage_bindings_and_nothing_else(api_as, member):
    clerk = staff_with("rbac.view_rolebinding", "rbac.add_rolebinding", "rbac.change_rolebinding")
    role = RoleFactory(slug="analysts")
    client = api_as(clerk)
    created = client.post(BINDINGS, {"role": "analysts", "user": member.username})
    assert created.status_code == 201, created.content
    assert created.json()["created_by"] == "clerk"
    assert client.patch(f"{BINDINGS}{created.json()['id']}/", {"expires_at": None}).status_code == 200
    assert client.delete(f"{BINDINGS}{created.json()['id']}/").status_code == 403  # no delete permission
    assert client.get(ROLES).status_code == 403
    assert client.patch(f"{ROLES}{role.slug}/", {"name": "Renamed"}).status_code == 403


# --- roles -----------------------------------------------------------------------------------------


def test_roles_are_created_read_changed_and_deleted(admin_api):
    created = admin_api.post(ROLES, {"slug": "analysts", "name": "Analysts", "description": "Read reports"})
    assert created.status_code == 201, created.content
    assert admin_api.get(f"{ROLES}analysts/").json()["description"] == "Read reports"
    changed = admin_api.patch(f"{ROLES}analysts/", {"name": "Data analysts"})
    assert changed.json()["name"] == "Data analysts"
    assert [r["slug"] for r in admin_api.get(ROLES).json()["results"]] == ["analysts"]
    assert admin_api.delete(f"{ROLES}analysts/").status_code == 204
    assert admin_api.get(f"{ROLES}analysts/").status_code == 404


def test_deleting_a_role_takes_its_bindings_and_grants_with_it(admin_api, member):
    role = RoleFactory(slug="gone")
    RoleBindingFactory(role=role, user=member)
    AppGrantFactory(role=role, app=None)
    assert admin_api.delete(f"{ROLES}gone/").status_code == 204
    assert not RoleBinding.objects.filter(role_id=role.pk).exists()


def test_a_role_slug_taken_or_malformed_is_a_400_naming_slug(admin_api):
    RoleFactory(slug="taken")
    assert_invalid(admin_api.post(ROLES, {"slug": "taken", "name": "Again"}), "slug")
    assert_invalid(admin_api.post(ROLES, {"slug": "no spaces", "name": "X"}), "slug")
    assert_invalid(admin_api.post(ROLES, {"name": "No slug"}), "slug")
    assert_invalid(admin_api.patch(f"{ROLES}taken/", {"name": ""}), "name")


def test_an_unknown_role_is_a_404_in_the_error_shape(admin_api):
    response = admin_api.get(f"{ROLES}nobody/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- bindings --------------------------------------------------------------------------------------


def test_a_binding_names_exactly_one_subject(admin_api, member, department):
    RoleFactory(slug="analysts")
    both = {"role": "analysts", "user": member.username, "department": department.slug}
    assert_invalid(admin_api.post(BINDINGS, both), "user", "department")
    assert_invalid(admin_api.post(BINDINGS, {"role": "analysts"}), "user", "department")
    assert_invalid(
        admin_api.post(BINDINGS, {"role": "analysts", "user": member.username, "include_descendants": True}),
        "include_descendants",
    )
    assert not RoleBinding.objects.exists()


def test_a_patch_cannot_leave_a_binding_without_a_subject_or_with_two(admin_api, member, department):
    binding = RoleBindingFactory(role=RoleFactory(), user=member)
    url = f"{BINDINGS}{binding.pk}/"
    assert_invalid(admin_api.patch(url, {"user": None}), "user", "department")
    assert_invalid(admin_api.patch(url, {"department": department.slug}), "user", "department")
    moved = admin_api.patch(url, {"user": None, "department": department.slug, "include_descendants": True})
    assert moved.status_code == 200, moved.content
    binding.refresh_from_db()
    assert binding.user_id is None
    assert (binding.department_id, binding.include_descendants) == (department.pk, True)


def test_unknown_role_user_or_department_are_400s_naming_each(admin_api):
    response = admin_api.post(BINDINGS, {"role": "nope", "user": "nobody"})
    assert_invalid(response, "role", "user")
    assert_invalid(admin_api.post(BINDINGS, {"role": "nope", "department": "nowhere"}), "department")


@pytest.mark.parametrize(
    "body",
    [
        {"role": ["a"]},
        {"role": "r", "user": {"x": 1}},
        {"role": "r", "user": "u\x00"},
        {"role": "r", "department": "d", "expires_at": "tomorrow"},
        {"role": "r", "department": "d", "include_descendants": "maybe"},
        [],
        "text",
    ],
)
def test_malformed_binding_bodies_are_400s_and_write_nothing(admin_api, body):
    RoleFactory(slug="r")
    response = admin_api.post(BINDINGS, body, format="json")
    assert response.status_code == 400, response.content
    assert not RoleBinding.objects.exists()


def test_bindings_are_filtered_by_role_user_department_and_expiry(admin_api, member, owner, department):
    past = timezone.now() - timedelta(days=1)
    readers, writers = RoleFactory(slug="readers"), RoleFactory(slug="writers")
    active = RoleBindingFactory(role=readers, user=member)
    lapsed = RoleBindingFactory(role=readers, user=owner, expires_at=past)
    by_department = RoleBindingFactory(role=writers, department=department)

    def ids(query):
        response = admin_api.get(BINDINGS, query)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids({"role": "readers"}) == {active.pk, lapsed.pk}
    assert ids({"user": "member"}) == {active.pk}
    assert ids({"department": department.slug}) == {by_department.pk}
    assert ids({"expired": "true"}) == {lapsed.pk}
    assert ids({"expired": "false"}) == {active.pk, by_department.pk}
    assert_invalid(admin_api.get(BINDINGS, {"expired": "yes"}), "expired")
    assert_invalid(admin_api.get(BINDINGS, {"role": "x\x01"}), "role")


def test_an_expired_binding_gives_no_access(admin_api, member):
    app = AppFactory(slug="reports")
    role = RoleFactory(slug="readers")
    AppGrantFactory(role=role, action=Action.USE, app=app)
    created = admin_api.post(BINDINGS, {"role": "readers", "user": "member"})
    assert list(apps_for(member, Action.USE)) == [app]
    past = (timezone.now() - timedelta(seconds=1)).isoformat()
    lapsed = admin_api.patch(f"{BINDINGS}{created.json()['id']}/", {"expires_at": past})
    assert lapsed.json()["expired"] is True
    assert list(apps_for(member, Action.USE)) == []


def test_a_binding_id_out_of_range_is_a_404(admin_api):
    assert admin_api.get(f"{BINDINGS}{2**63}/").status_code == 404
    assert admin_api.get(f"{BINDINGS}99999999999/").status_code == 404


# --- departments -----------------------------------------------------------------------------------


def test_departments_are_created_under_a_parent_with_members_by_username(admin_api, member, owner):
    DepartmentFactory(slug="acme", name="Acme")
    body = {"slug": "research", "name": "Research", "parent": "acme", "members": ["member", "owner"]}
    created = admin_api.post(DEPARTMENTS, body)
    assert created.status_code == 201, created.content
    assert created.json()["parent"] == "acme"
    assert sorted(created.json()["members"]) == ["member", "owner"]
    changed = admin_api.patch(f"{DEPARTMENTS}research/", {"members": ["owner"]})
    assert changed.json()["members"] == ["owner"]


def test_unknown_members_or_parent_are_400s_and_nothing_is_created(admin_api):
    response = admin_api.post(DEPARTMENTS, {"slug": "x", "name": "X", "members": ["ghost"], "parent": "void"})
    assert_invalid(response, "members", "parent")
    assert "ghost" in str(response.json()["error"]["detail"]["members"])
    assert not Department.objects.filter(slug="x").exists()


def test_a_department_cannot_move_under_itself_or_its_own(admin_api):
    acme = DepartmentFactory(slug="acme")
    research = DepartmentFactory(slug="research", parent=acme)
    DepartmentFactory(slug="ml", parent=research)
    assert_invalid(admin_api.patch(f"{DEPARTMENTS}acme/", {"parent": "ml"}), "parent")
    assert_invalid(admin_api.patch(f"{DEPARTMENTS}acme/", {"parent": "acme"}), "parent")
    acme.refresh_from_db()
    assert acme.parent_id is None


def test_a_refused_move_changes_nothing_else_in_the_same_patch(admin_api):
    acme = DepartmentFactory(slug="acme", name="Acme")
    DepartmentFactory(slug="ml", parent=acme)
    assert_invalid(admin_api.patch(f"{DEPARTMENTS}acme/", {"parent": "ml", "name": "Renamed"}), "parent")
    acme.refresh_from_db()
    assert acme.name == "Acme"


def test_moving_a_department_moves_its_subtrees_access(admin_api):
    """A member of a sub-department gains an app when its parent moves under a department bound with
    include_descendants, and loses it when it moves away again."""
    alice = UserFactory(username="alice")
    app = AppFactory(slug="reports")
    sales, research = DepartmentFactory(slug="sales"), DepartmentFactory(slug="research")
    DepartmentFactory(slug="ml", parent=research, members=[alice])
    role = RoleFactory(slug="sales-staff")
    RoleBindingFactory(role=role, department=sales, include_descendants=True)
    AppGrantFactory(role=role, action=Action.USE, app=app)
    assert list(apps_for(alice, Action.USE)) == []
    assert admin_api.patch(f"{DEPARTMENTS}research/", {"parent": "sales"}).status_code == 200
    assert list(apps_for(alice, Action.USE)) == [app]
    assert admin_api.patch(f"{DEPARTMENTS}research/", {"parent": None}).status_code == 200
    assert list(apps_for(alice, Action.USE)) == []


def test_a_department_with_sub_departments_cannot_be_deleted(admin_api):
    acme = DepartmentFactory(slug="acme")
    DepartmentFactory(slug="ml", parent=acme)
    response = admin_api.delete(f"{DEPARTMENTS}acme/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "still_referenced"
    assert admin_api.delete(f"{DEPARTMENTS}ml/").status_code == 204
    assert admin_api.delete(f"{DEPARTMENTS}acme/").status_code == 204


def test_the_policy_endpoints_are_in_the_openapi_schema(admin_api):
    schema = admin_api.get("/api/schema/", {"format": "json"})
    paths = json.loads(schema.content)["paths"]
    for url in [ROLES, f"{ROLES}{{slug}}/", BINDINGS, f"{BINDINGS}{{id}}/", DEPARTMENTS, "/api/rbac/grants/"]:
        assert url in paths, url
