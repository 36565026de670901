"""An executor's stored token never follows its URL: a new URL needs the token again (admin and services)."""

import pytest
from django.contrib.auth.models import Permission

from agents.models import Executor
from agents.services import ExecutorTokenRequired, executor_sync
from tests.agents.test_executor_admin import CHANGE_URL, form_data
from tests.factories import ExecutorFactory, UserFactory

pytestmark = pytest.mark.django_db

ATTACKER_URL = "http://attacker.example:8100"


@pytest.fixture
def staff(client):
    """A staff user who may change executors, and nothing else: the person this rule is about."""
    user = UserFactory(username="operator", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_executor", "change_executor"]))
    client.force_login(user)
    return client


def test_a_new_url_without_the_token_is_refused_with_a_form_error(staff):
    executor = ExecutorFactory()
    before = (executor.base_url, executor.token)
    response = staff.post(CHANGE_URL.format(executor.pk), form_data(executor, base_url=ATTACKER_URL))
    assert response.status_code == 200  # the form again, not a redirect
    assert "Changing the URL requires entering the token again" in response.content.decode()
    assert executor.token not in response.content.decode()
    executor.refresh_from_db()
    assert (executor.base_url, executor.token) == before


def test_a_new_url_with_a_new_token_is_saved(staff):
    executor = ExecutorFactory()
    data = form_data(executor, base_url=ATTACKER_URL, token="the-new-hosts-token")
    response = staff.post(CHANGE_URL.format(executor.pk), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    executor.refresh_from_db()
    assert (executor.base_url, executor.token) == (ATTACKER_URL, "the-new-hosts-token")


def test_a_new_url_with_the_token_cleared_is_saved_without_a_token(staff):
    executor = ExecutorFactory()
    data = form_data(executor, base_url=ATTACKER_URL, clear_token="on")
    assert staff.post(CHANGE_URL.format(executor.pk), data).status_code == 302
    executor.refresh_from_db()
    assert (executor.base_url, executor.token) == (ATTACKER_URL, "")


def test_an_executor_without_a_token_may_change_its_url(staff):
    executor = ExecutorFactory(token="")
    assert (
        staff.post(CHANGE_URL.format(executor.pk), form_data(executor, base_url=ATTACKER_URL)).status_code
        == 302
    )
    executor.refresh_from_db()
    assert executor.base_url == ATTACKER_URL


def test_other_changes_keep_the_stored_token_without_re_entering_it(staff):
    executor = ExecutorFactory()
    assert staff.post(CHANGE_URL.format(executor.pk), form_data(executor, retries=7)).status_code == 302
    executor.refresh_from_db()
    assert executor.retries == 7
    assert executor.token.startswith("secret-token-")


def test_the_sync_service_refuses_a_new_url_that_keeps_the_stored_token():
    executor = ExecutorFactory()
    with pytest.raises(ExecutorTokenRequired):
        executor_sync(name=executor.name, wanted={"base_url": ATTACKER_URL})
    assert Executor.objects.get(pk=executor.pk).base_url == executor.base_url
    moved = executor_sync(name=executor.name, wanted={"base_url": ATTACKER_URL, "token": "new"})
    assert (moved.base_url, moved.token) == (ATTACKER_URL, "new")
