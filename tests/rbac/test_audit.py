"""The change audit: creates, updates and deletes of roles, bindings, departments (members too), grants,
prompt activations and projects are django-auditlog entries with who, when, before and after, whether
made in the admin, through the API or by the policy import; the address is the trusted client address."""

import pytest
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from agents.models import Action, AppGrant, Project, PromptActivation
from rbac.models import Department, Role, RoleBinding
from run_queue.models import QueueEntry
from runs.models import Run, RunEvent
from tests.factories import AppFactory, DepartmentFactory, RoleBindingFactory, RoleFactory, UserFactory, grant

pytestmark = pytest.mark.django_db


def entries_for(instance):
    return LogEntry.objects.get_for_object(instance).order_by("timestamp", "pk")


def test_the_policy_models_are_audited_and_the_run_path_is_not():
    for model in [Role, RoleBinding, Department, AppGrant, PromptActivation, Project]:
        assert auditlog.contains(model), model
    for model in [Run, RunEvent, QueueEntry]:
        assert not auditlog.contains(model), model


def test_a_binding_changed_in_the_admin_is_recorded_with_its_actor_and_before_and_after(client, superuser):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    binding = RoleBindingFactory(role=RoleFactory(slug="readers"), user=alice)
    client.force_login(superuser)
    form = {"role": binding.role_id, "user": bob.pk, "department": "", "expires_at_0": "", "expires_at_1": ""}
    response = client.post(
        f"/admin/rbac/rolebinding/{binding.pk}/change/", form, HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = entries_for(binding).last()
    assert entry.action == LogEntry.Action.UPDATE
    assert entry.actor == superuser
    assert entry.changes == {"user": [alice.pk, bob.pk]}  # JSON values (AUDITLOG_STORE_JSON_CHANGES)
    assert entry.remote_addr == "127.0.0.1"  # a client's own X-Forwarded-For is not believed
    assert entry.cid == response["X-Request-ID"]


def test_a_binding_changed_through_the_api_with_a_token_is_recorded_with_the_token_user(superuser, member):
    binding = RoleBindingFactory(role=RoleFactory(slug="readers"), user=member)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=superuser).key}")
    response = api.patch(f"/api/rbac/bindings/{binding.pk}/", {"expires_at": "2031-01-01T00:00:00Z"})
    assert response.status_code == 200, response.content
    entry = entries_for(binding).last()
    assert entry.actor == superuser
    assert entry.changes["expires_at"][0] is None
    assert entry.changes["expires_at"][1].startswith("2031-01-01")


def test_creating_and_deleting_through_the_api_is_recorded(api_as, superuser, member):
    api = api_as(superuser)
    created = api.post("/api/rbac/roles/", {"slug": "temp", "name": "Temp"})
    role = Role.objects.get(slug="temp")
    assert api.delete("/api/rbac/roles/temp/").status_code == 204
    actions = list(entries_for(role).values_list("action", "actor_id"))
    assert created.status_code == 201
    assert actions == [(LogEntry.Action.CREATE, superuser.pk), (LogEntry.Action.DELETE, superuser.pk)]


def test_a_department_s_members_are_audited(api_as, superuser, member, owner):
    department = DepartmentFactory(slug="research")
    response = api_as(superuser).patch("/api/rbac/departments/research/", {"members": ["member", "owner"]})
    assert response.status_code == 200
    entry = entries_for(department).last()
    assert entry.actor == superuser
    assert entry.changes["members"]["operation"] == "add"
    assert sorted(entry.changes["members"]["objects"]) == ["member", "owner"]


def test_behind_a_trusted_proxy_the_forwarded_client_address_is_recorded(client, superuser, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    binding = RoleBindingFactory(role=RoleFactory(), user=UserFactory())
    client.force_login(superuser)
    url = f"/admin/rbac/rolebinding/{binding.pk}/delete/"
    client.post(url, {"post": "yes"}, HTTP_X_FORWARDED_FOR="198.51.100.7")
    entry = entries_for(binding).get(action=LogEntry.Action.DELETE)
    assert (entry.actor, entry.remote_addr) == (superuser, "198.51.100.7")


def test_a_change_outside_any_request_or_actor_has_no_actor():
    role = RoleFactory(slug="shell")
    entry = entries_for(role).get()
    assert (entry.actor, entry.remote_addr, entry.cid) == (None, None, None)


def test_the_audit_log_in_the_admin_is_read_only_and_filters_by_model_and_actor(client, superuser):
    client.force_login(superuser)
    client.post("/admin/rbac/role/add/", {"name": "Auditors", "slug": "auditors", **_empty_inlines()})
    entry = LogEntry.objects.get(content_type=ContentType.objects.get_for_model(Role))
    assert entry.actor == superuser
    base = "/admin/auditlog/logentry/"
    by_actor = client.get(base, {"actor": superuser.pk})
    assert by_actor.status_code == 200
    assert "Auditors" in by_actor.content.decode()
    other = UserFactory(username="other")
    assert "Auditors" not in client.get(base, {"actor": other.pk}).content.decode()
    by_model = client.get(base, {"resource_type": entry.content_type_id})
    assert "Auditors" in by_model.content.decode()
    assert client.get(f"{base}add/").status_code == 403
    page = client.get(f"{base}{entry.pk}/change/").content.decode()
    assert 'name="_save"' not in page


def _empty_inlines() -> dict[str, str]:
    # The role page's inlines (app grants, bindings): management forms with no rows.
    data = {}
    for prefix in ["app_grants", "bindings"]:
        data |= {
            f"{prefix}-TOTAL_FORMS": "0",
            f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
        }
    return data


def test_starting_a_run_touches_no_audit_table(api_as, member):
    grant(member, Action.USE, AppFactory(slug="demo"))
    client = api_as(member)
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/api/runs/", {"app": "demo", "input": {}}, format="json")
    assert response.status_code == 201, response.content
    assert not [query for query in captured if "auditlog" in query["sql"]]
