"""The fault API (/v1/admin/) answers only to its own token, and is off unless EXECUTOR_ADMIN_TOKEN is set."""

import subprocess
import sys

import pytest

from tests.executor_support import ROOT, start_executor, stop_process


@pytest.fixture(scope="module")
def executor_without_admin_token(tmp_path_factory):
    executor = start_executor(tmp_path_factory.mktemp("executor"), env={"EXECUTOR_ADMIN_TOKEN": ""})
    try:
        yield executor
    finally:
        stop_process(executor.process)


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("who", ["protocol token", "empty bearer", "no header"])
def test_without_an_admin_token_the_fault_api_is_off(executor_without_admin_token, method, who):
    executor = executor_without_admin_token
    token = {"protocol token": executor.token, "empty bearer": "", "no header": None}[who]
    headers = {"Authorization": ""} if token is None else {}
    response = executor.http(method, "/v1/admin/faults", token=token, headers=headers, json={})
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    assert "EXECUTOR_ADMIN_TOKEN" in response.json()["error"]["message"]


def test_without_an_admin_token_the_protocol_still_answers(executor_without_admin_token):
    assert executor_without_admin_token.http("GET", "/v1/health").status_code == 200


def test_the_protocol_token_does_not_open_the_fault_api(executor):
    response = executor.http("POST", "/v1/admin/faults", token=executor.token, json={})
    assert response.status_code == 401
    assert executor.http("GET", "/v1/admin/faults", token=executor.admin_token).status_code == 200


def test_an_admin_token_equal_to_the_protocol_token_stops_start_up():
    environment = {"EXECUTOR_TOKEN": "same-secret", "EXECUTOR_ADMIN_TOKEN": "same-secret", "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-m", "executor", "--port", "0"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "EXECUTOR_ADMIN_TOKEN: must differ from EXECUTOR_TOKEN" in result.stderr
    assert "same-secret" not in result.stderr
