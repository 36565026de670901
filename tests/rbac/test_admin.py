"""The RBAC admin: the department tree with full paths (one query for the page), roles with their grants
and bindings inline, the binding admin's filters, staff who may manage bindings and nothing else, and the
effective-access page, which agrees with the app store's API."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Action, AppGrant
from rbac.models import RoleBinding
from tests.factories import (
    AppFactory,
    AppGrantFactory,
    DepartmentFactory,
    RoleBindingFactory,
    RoleFactory,
    UserFactory,
    grant,
    staff_with,
)

pytestmark = pytest.mark.django_db

DEPARTMENTS = "/admin/rbac/department/"
BINDINGS = "/admin/rbac/rolebinding/"


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def inline_management(prefix: str, total: int = 0) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def test_the_department_list_shows_each_full_path(admin_client):
    acme = DepartmentFactory(name="Acme", slug="acme")
    research = DepartmentFactory(name="Research", slug="research", parent=acme)
    DepartmentFactory(name="ML", slug="ml", parent=research)
    page = admin_client.get(DEPARTMENTS).content.decode()
    assert "Acme › Research › ML" in page
    assert "Acme › Research<" in page


def test_the_department_paths_cost_one_query_for_the_whole_page(admin_client):
    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(DEPARTMENTS).status_code == 200
        return len(captured)

    root = DepartmentFactory(name="Root", slug="root")
    parent = DepartmentFactory(name="Level 1", slug="level-1", parent=root)
    few = queries_for_list()
    for depth in range(2, 12):
        parent = DepartmentFactory(name=f"Level {depth}", slug=f"level-{depth}", parent=parent)
    assert queries_for_list() == few


def test_the_role_page_adds_app_grants_and_bindings_inline_made_by_the_saver(admin_client, superuser, member):
    app = AppFactory(slug="reports")
    role = RoleFactory(slug="readers", name="Readers")
    form = {
        "name": "Readers",
        "slug": "readers",
        "description": "",
        **inline_management("app_grants", 1),
        "app_grants-0-action": Action.USE,
        "app_grants-0-app": app.pk,
        **inline_management("bindings", 1),
        "bindings-0-user": member.pk,
        "bindings-0-department": "",
        "bindings-0-expires_at_0": "",
        "bindings-0-expires_at_1": "",
    }
    response = admin_client.post(f"/admin/rbac/role/{role.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert AppGrant.objects.get(role=role).created_by == superuser
    assert RoleBinding.objects.get(role=role, user=member).created_by == superuser


def test_a_binding_added_in_the_admin_is_made_by_the_request_user(admin_client, superuser, member):
    role = RoleFactory()
    form = {"role": role.pk, "user": member.pk, "department": "", "expires_at_0": "", "expires_at_1": ""}
    assert admin_client.post(f"{BINDINGS}add/", form).status_code == 302
    assert RoleBinding.objects.get().created_by == superuser


def test_the_admin_refuses_a_binding_with_two_subjects(admin_client, member, department):
    form = {"role": RoleFactory().pk, "user": member.pk, "department": department.pk}
    response = admin_client.post(f"{BINDINGS}add/", form | {"expires_at_0": "", "expires_at_1": ""})
    assert response.status_code == 200
    assert "exactly one of a user or a department" in response.content.decode()
    assert not RoleBinding.objects.exists()


def test_the_binding_list_filters_expired_and_active_bindings(admin_client):
    role = RoleFactory(name="Readers")
    active = RoleBindingFactory(role=role, user=UserFactory(username="still-here"))
    yesterday = timezone.now() - timedelta(days=1)
    RoleBindingFactory(role=role, user=UserFactory(username="long-gone"), expires_at=yesterday)
    expired_page = admin_client.get(BINDINGS, {"expired": "yes"}).content.decode()
    active_page = admin_client.get(BINDINGS, {"expired": "no"}).content.decode()
    assert "long-gone" in expired_page
    assert "still-here" not in expired_page
    assert "still-here" in active_page
    assert "long-gone" not in active_page
    by_subject = admin_client.get(BINDINGS, {"department__isempty": "1"})
    assert by_subject.status_code == 200
    assert f"/admin/rbac/rolebinding/{active.pk}/change/" in by_subject.content.decode()


def test_staff_with_only_binding_permissions_manage_bindings_and_nothing_else(client, member):
    clerk = staff_with("rbac.view_rolebinding", "rbac.add_rolebinding", "rbac.change_rolebinding")
    client.force_login(clerk)
    role = RoleFactory(slug="readers", name="Readers")
    form = {"role": role.pk, "user": member.pk, "department": "", "expires_at_0": "", "expires_at_1": ""}
    assert client.post(f"{BINDINGS}add/", form).status_code == 302
    binding = RoleBinding.objects.get()
    assert binding.created_by == clerk
    assert client.get(f"{BINDINGS}{binding.pk}/change/").status_code == 200
    assert client.post(f"{BINDINGS}{binding.pk}/delete/", {"post": "yes"}).status_code == 403
    for url in [
        "/admin/rbac/role/",
        DEPARTMENTS,
        "/admin/auth/user/",
        "/admin/agents/appgrant/",
        "/admin/agents/app/",
        f"/admin/rbac/role/{role.pk}/change/",
        "/admin/auditlog/logentry/",
    ]:
        assert client.get(url).status_code == 403, url
    index = client.get("/admin/").content.decode()
    assert "/admin/rbac/rolebinding/" in index
    assert "/admin/rbac/role/" not in index


def test_a_binding_manager_can_search_roles_and_users_only_for_the_binding_form(client, member):
    clerk = staff_with("rbac.add_rolebinding")
    client.force_login(clerk)
    RoleFactory(slug="readers", name="Readers")

    def autocomplete(app_label, model_name, field_name, term):
        query = {"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": term}
        return client.get("/admin/autocomplete/", query)

    roles = autocomplete("rbac", "rolebinding", "role", "Read")
    assert roles.status_code == 200
    assert [r["text"] for r in roles.json()["results"]] == ["Readers"]
    assert autocomplete("rbac", "rolebinding", "user", "mem").json()["results"][0]["text"] == "member"
    assert autocomplete("agents", "appgrant", "role", "Read").status_code == 403
    assert autocomplete("agents", "project", "department", "").status_code == 403


def test_a_staff_member_without_binding_permissions_cannot_search_roles(client):
    client.force_login(staff_with("agents.view_app", username="app-viewer"))
    query = {"app_label": "rbac", "model_name": "rolebinding", "field_name": "role", "term": ""}
    assert client.get("/admin/autocomplete/", query).status_code == 403


def test_effective_access_agrees_with_the_store_api(admin_client, api_as, member, department):
    reports, notes = AppFactory(slug="reports"), AppFactory(slug="notes")
    lapsed = AppFactory(slug="lapsed-app")
    grant(member, Action.USE, reports)
    grant(department, Action.SEE, notes)
    grant(member, Action.USE, lapsed, expires_at=timezone.now() - timedelta(days=1))
    page = admin_client.get(f"/admin/agents/appgrant/effective-access/{member.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    store = api_as(member).get("/api/apps/").json()["results"]
    expected = {(app["slug"], app["usable"]) for app in store}
    assert expected == {("reports", True), ("notes", False)}
    shown = {(row.split('"')[1], row.split('"')[3] == "true") for row in html.split("data-app=")[1:]}
    assert shown == expected
    assert f"department:{department}" in html
    assert "lapsed-app" not in html


def test_effective_access_is_linked_from_the_user_list(admin_client, member):
    page = admin_client.get("/admin/auth/user/").content.decode()
    assert f"/admin/agents/appgrant/effective-access/{member.pk}/" in page


def test_effective_access_needs_the_grant_and_binding_view_permissions(client, member):
    url = f"/admin/agents/appgrant/effective-access/{member.pk}/"
    client.force_login(staff_with("rbac.view_rolebinding", username="half"))
    assert client.get(url).status_code == 403
    client.force_login(staff_with("rbac.view_rolebinding", "agents.view_appgrant", username="both"))
    assert client.get(url).status_code == 200
    assert client.get("/admin/agents/appgrant/effective-access/999999/").status_code == 404


def test_a_superuser_s_effective_access_is_every_app(admin_client, superuser):
    AppFactory(slug="reports", enabled=False)
    html = admin_client.get(f"/admin/agents/appgrant/effective-access/{superuser.pk}/").content.decode()
    assert 'data-app="reports"' in html
    assert "is a superuser" in html


def test_the_app_grant_admin_lists_grants_on_every_app(admin_client):
    AppGrantFactory(role=RoleFactory(name="Everyone"), action=Action.SEE, app=None)
    assert "every app" in admin_client.get("/admin/agents/appgrant/").content.decode()
