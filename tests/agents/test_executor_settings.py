"""Malformed EXECUTOR_* settings stop start-up naming the variable."""

import pytest

from tests.controlplane.test_settings import assert_refused, start


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"EXECUTOR_URL": "ftp://executor", "EXECUTOR_TOKEN": "t"}, "EXECUTOR_URL"),
        ({"EXECUTOR_URL": "http://executor:8100", "EXECUTOR_TOKEN": ""}, "EXECUTOR_TOKEN"),
        ({"EXECUTOR_RETRIES": "-1"}, "EXECUTOR_RETRIES"),
        ({"EXECUTOR_TIMEOUT_S": "soon"}, "EXECUTOR_TIMEOUT_S"),
    ],
)
def test_malformed_executor_settings_stop_startup(overrides, variable):
    assert_refused(start(**overrides), variable)
