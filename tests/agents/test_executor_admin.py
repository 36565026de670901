"""An executor's token is stored but never shown back: not in the change form, the list, a read-only view."""

import re

import pytest
from django.contrib.auth.models import Permission

from agents.models import Executor
from tests.factories import ExecutorFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGE_URL = "/admin/agents/executor/{}/change/"


def form_data(executor, **overrides):
    data = {
        "name": executor.name,
        "base_url": executor.base_url,
        "token": "",
        "connect_timeout_s": executor.connect_timeout_s,
        "read_timeout_s": executor.read_timeout_s,
        "retries": executor.retries,
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_the_change_form_never_contains_the_token(client, superuser):
    executor = ExecutorFactory()
    client.force_login(superuser)
    page = client.get(CHANGE_URL.format(executor.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert executor.token not in html
    assert 'type="password" name="token"' in html


def test_the_list_shows_only_whether_a_token_is_set(client, superuser):
    with_token = ExecutorFactory()
    ExecutorFactory(token="")
    client.force_login(superuser)
    page = client.get("/admin/agents/executor/")
    html = page.content.decode()
    assert with_token.token not in html
    assert "token set" in html.lower()
    cells = re.findall(r'<td class="field-token_set"><img [^>]*alt="(True|False)"', html)
    assert sorted(cells) == ["False", "True"]


def test_a_blank_token_keeps_the_stored_one_and_a_new_one_replaces_it(client, superuser):
    executor = ExecutorFactory()
    original = executor.token
    client.force_login(superuser)
    response = client.post(CHANGE_URL.format(executor.pk), form_data(executor, retries=5))
    assert response.status_code == 302, response.content.decode()[:2000]
    executor.refresh_from_db()
    assert (executor.token, executor.retries) == (original, 5)
    client.post(CHANGE_URL.format(executor.pk), form_data(executor, token="rotated-token"))
    executor.refresh_from_db()
    assert executor.token == "rotated-token"


def test_clear_token_removes_it(client, superuser):
    executor = ExecutorFactory()
    client.force_login(superuser)
    client.post(CHANGE_URL.format(executor.pk), form_data(executor, clear_token="on"))
    executor.refresh_from_db()
    assert executor.token == ""


def test_adding_an_executor_stores_its_token(client, superuser):
    client.force_login(superuser)
    data = {
        "name": "gpu",
        "base_url": "http://gpu:8100",
        "token": "new-secret",
        "connect_timeout_s": 5,
        "read_timeout_s": 30,
        "retries": 3,
        "enabled": "on",
    }
    response = client.post("/admin/agents/executor/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Executor.objects.get(name="gpu").token == "new-secret"


def test_a_view_only_admin_sees_whether_a_token_is_set_but_not_the_token(client):
    executor = ExecutorFactory()
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_executor"))
    client.force_login(viewer)
    page = client.get(CHANGE_URL.format(executor.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert executor.token not in html
    assert "Token set" in html


def test_the_env_managed_default_executor_is_read_only_and_hides_its_token(client, superuser, settings):
    settings.EXECUTOR_URL = "http://executor:8100"
    executor = ExecutorFactory(name="default", token="from-the-environment")
    client.force_login(superuser)
    html = client.get(CHANGE_URL.format(executor.pk)).content.decode()
    assert "from-the-environment" not in html
    assert 'name="base_url"' not in html
    assert 'name="token"' not in html
