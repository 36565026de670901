"""The admin's settings form: values checked against the app's schema, secrets write-only (never rendered,
blank keeps them); projects pick their department by autocomplete."""

import pytest

from agents.models import AppSetting
from tests.factories import AppFactory, AppSettingFactory, ProjectFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-admin-secret-0099"
SCHEMA = {
    "type": "object",
    "properties": {"model": {"enum": ["a", "b"]}, "api_key": {"type": "string", "writeOnly": True}},
    "additionalProperties": False,
}
CHANGE_URL = "/admin/agents/appsetting/{}/change/"


@pytest.fixture
def layer(db):
    app = AppFactory(slug="writer", settings_schema=SCHEMA)
    return AppSettingFactory(app=app, values={"model": "a", "api_key": SECRET})


def form_data(layer, **overrides):
    data = {"app": layer.app_id, "scope": "app", "project": "", "user": "", "values": '{"model": "b"}'}
    return data | overrides


def test_the_change_form_and_the_list_never_show_a_secret(client, superuser, layer):
    client.force_login(superuser)
    page = client.get(CHANGE_URL.format(layer.pk)).content.decode()
    assert SECRET not in page
    assert 'type="password" name="secrets"' in page
    listing = client.get("/admin/agents/appsetting/").content.decode()
    assert SECRET not in listing
    assert "api_key" in listing  # secrets set, by name


def test_a_blank_secrets_field_keeps_them_and_a_null_removes_one(client, superuser, layer):
    client.force_login(superuser)
    response = client.post(CHANGE_URL.format(layer.pk), form_data(layer))
    assert response.status_code == 302, response.content.decode()[:3000]
    layer.refresh_from_db()
    assert (layer.values, layer.updated_by) == ({"model": "b", "api_key": SECRET}, superuser)
    client.post(CHANGE_URL.format(layer.pk), form_data(layer, secrets='{"api_key": null}'))
    layer.refresh_from_db()
    assert layer.values == {"model": "b"}


def test_values_outside_the_schema_are_refused_by_name(client, superuser, layer):
    client.force_login(superuser)
    response = client.post(CHANGE_URL.format(layer.pk), form_data(layer, values='{"model": "x", "y": 1}'))
    assert response.status_code == 200
    page = response.content.decode()
    assert "model:" in page
    assert "y: Not a setting of this app." in page
    assert AppSetting.objects.get(pk=layer.pk).values == {"model": "a", "api_key": SECRET}


def test_a_project_picks_its_department_by_autocomplete(client, superuser, department):
    project = ProjectFactory(department=department)
    client.force_login(superuser)
    page = client.get(f"/admin/agents/project/{project.pk}/change/").content.decode()
    assert "admin-autocomplete" in page
