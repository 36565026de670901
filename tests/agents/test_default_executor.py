"""A deployment reaches its executor from EXECUTOR_* settings alone, through the row named "default"."""

import pytest

from agents.executor_client import client_for
from agents.models import Executor
from agents.selectors import default_executor
from tests.factories import ExecutorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def executor_settings(settings):
    settings.EXECUTOR_URL = "http://executor:8100"
    settings.EXECUTOR_TOKEN = "env-token"
    settings.EXECUTOR_CONNECT_TIMEOUT_S = 2.0
    settings.EXECUTOR_TIMEOUT_S = 45.0
    settings.EXECUTOR_RETRIES = 4
    return settings


def test_the_default_executor_is_created_from_settings(executor_settings):
    executor = default_executor()
    assert executor is not None
    assert (executor.name, executor.base_url, executor.token) == (
        "default",
        "http://executor:8100",
        "env-token",
    )
    assert (executor.connect_timeout_s, executor.read_timeout_s, executor.retries) == (2.0, 45.0, 4)


def test_it_follows_changed_settings(executor_settings):
    default_executor()
    executor_settings.EXECUTOR_URL = "http://elsewhere:9000"
    executor_settings.EXECUTOR_TOKEN = "rotated"
    executor = default_executor()
    assert (executor.base_url, executor.token) == ("http://elsewhere:9000", "rotated")
    assert Executor.objects.count() == 1


def test_in_steady_state_it_costs_no_query(executor_settings, django_assert_num_queries, settings):
    default_executor()
    with django_assert_num_queries(0):
        default_executor()  # kept for CONFIG_CACHE_S
    settings.CONFIG_CACHE_S = 0
    with django_assert_num_queries(1):
        default_executor()


def test_an_admin_can_disable_it_and_settings_do_not_re_enable_it(executor_settings):
    executor = default_executor()
    executor.enabled = False
    executor.save()  # as the admin does: the cache of this process is emptied
    assert default_executor() is None
    assert Executor.objects.get(name="default").enabled is False


def test_without_executor_url_the_admin_managed_row_is_used(settings):
    settings.EXECUTOR_URL = ""
    assert default_executor() is None
    ExecutorFactory(name="default", base_url="http://by-hand:8100")
    assert default_executor().base_url == "http://by-hand:8100"


def test_client_for_reuses_a_client_until_the_executor_changes():
    executor = ExecutorFactory()
    first = client_for(executor)
    assert client_for(executor) is first
    executor.token = "rotated"
    second = client_for(executor)
    assert second is not first
    assert second.config.token == "rotated"
    assert "rotated" not in repr(second.config)
