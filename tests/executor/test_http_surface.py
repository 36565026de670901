"""The executor's HTTP surface: Bearer auth on every call; bad input answered 4xx in the one error shape."""

import pytest

from tests.executor_support import start_body


def assert_error_shape(response, status, code=None):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"code", "message", "detail"}
    if code is not None:
        assert error["code"] == code
    return error


@pytest.mark.parametrize("token", ["", "wrong", "Basic xyz"])
def test_a_missing_or_wrong_token_is_refused_with_401(executor, token):
    response = executor.http("GET", "/v1/health", token=token)
    assert_error_shape(response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_health_answers_with_the_token(executor):
    response = executor.http("GET", "/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["protocol"] == 1


def test_every_route_needs_the_token(executor):
    for method, path in [("GET", "/v1/agents"), ("POST", "/v1/runs"), ("GET", "/v1/runs/x/events")]:
        assert_error_shape(executor.http(method, path, token="nope"), 401)


def test_admin_calls_need_the_admin_token(executor):
    assert_error_shape(executor.http("GET", "/v1/admin/faults"), 401)
    assert executor.http("GET", "/v1/admin/faults", token=executor.admin_token).status_code == 200


def without(body, *names):
    return {k: v for k, v in body.items() if k not in names}


BAD_STARTS = [
    ("not json", None, "invalid_json"),
    ("[1, 2]", None, "invalid"),
    (None, without(start_body(), "run_id"), "run_id"),
    (None, without(start_body(), "app"), "app"),
    (None, without(start_body(), "prompt"), "prompt"),
    (None, without(start_body(), "input"), "input"),
    (None, start_body(run_id=42), "run_id"),
    (None, start_body(run_id="has/slash"), "run_id"),
    (None, start_body(run_id="x" * 200), "run_id"),
    (None, start_body(prompt={"version": "one", "text": "t"}), "prompt.version"),
    (None, start_body(prompt={"version": 1}), "prompt.text"),
    (None, start_body(run_input=[1]), "input"),
    (None, start_body(plugins={"name": "x"}), "plugins"),
    (None, start_body(plugins=[{"name": "Bad Name", "schema": {}}]), "plugins[0].name"),
    (None, start_body(plugins=[{"name": "ok", "schema": []}]), "plugins[0].schema"),
    (None, start_body(tool_gateway={"url": "ftp://x", "token": "t"}), "tool_gateway.url"),
    (None, start_body(tool_gateway={"url": "http://x"}), "tool_gateway.token"),
    (None, start_body(agent={"kind": "telepathy"}), "agent"),
    (None, start_body(agent={"kind": "scripted", "playbook": "nope"}), "agent"),
    (None, start_body(agent={"kind": "openai", "max_turns": 0}), "agent"),
    (None, start_body(agent="demo"), "agent"),
]


@pytest.mark.parametrize(("raw", "body", "expected"), BAD_STARTS)
def test_bad_start_requests_get_400_naming_the_problem(executor, raw, body, expected):
    if raw is not None:
        response = executor.http("POST", "/v1/runs", data=raw, headers={"Content-Type": "application/json"})
    else:
        response = executor.http("POST", "/v1/runs", json=body)
    error = assert_error_shape(response, 400)
    assert error["code"] == expected or expected in error["detail"], error


def test_an_empty_body_is_invalid_json(executor):
    assert_error_shape(executor.http("POST", "/v1/runs"), 400, "invalid_json")


def test_a_huge_body_is_refused_with_413(executor):
    response = executor.http("POST", "/v1/runs", data=b"x" * (1024 * 1024 + 1))
    assert_error_shape(response, 413, "too_large")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/runs/no-such-run"),
        ("GET", "/v1/runs/no-such-run/events"),
        ("POST", "/v1/runs/no-such-run/cancel"),
        ("POST", "/v1/runs/no-such-run/input"),
    ],
)
def test_an_unknown_run_is_404(executor, method, path):
    response = executor.http(method, path, json={"request_id": "r", "answer": "a"})
    assert_error_shape(response, 404, "run_not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"answer": "yes"}, "request_id"),
        ({"request_id": "x"}, "answer"),
        ({"request_id": "x", "answer": 42}, "answer"),
        ({"request_id": 7, "answer": "yes"}, "request_id"),
    ],
)
def test_bad_input_bodies_get_400(executor, body, field):
    run_id = executor.start_run("long")
    error = assert_error_shape(executor.http("POST", f"/v1/runs/{run_id}/input", json=body), 400, "invalid")
    assert field in error["detail"]
    executor.http("POST", f"/v1/runs/{run_id}/cancel")


def test_input_with_bad_json_or_an_unknown_request_is_refused(executor):
    run_id = executor.start_run("long")
    bad_json = executor.http("POST", f"/v1/runs/{run_id}/input", data="{", headers={"Content-Type": "x"})
    assert_error_shape(bad_json, 400, "invalid_json")
    unknown = executor.http("POST", f"/v1/runs/{run_id}/input", json={"request_id": "nope", "answer": "a"})
    assert_error_shape(unknown, 404, "request_not_found")
    executor.http("POST", f"/v1/runs/{run_id}/cancel")


@pytest.mark.parametrize("after", ["-1", "abc", "1.5"])
def test_a_bad_after_is_400(executor, after):
    run_id = executor.start_run("instant")
    response = executor.http("GET", f"/v1/runs/{run_id}/events?after={after}")
    assert_error_shape(response, 400, "invalid")


def test_an_unknown_route_is_404_and_a_wrong_method_405(executor):
    assert_error_shape(executor.http("GET", "/v2/nothing"), 404, "not_found")
    response = executor.http("DELETE", "/v1/runs")
    assert_error_shape(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    "rules",
    [
        {"fail": {"count": 0}},
        {"fail": {"status": 200}},
        {"fail": {"path_prefix": "v1"}},
        {"latency": {"seconds": "slow"}},
        {"cut_stream": {}},
        {"fail": "yes"},
        {"forget_runs": "please"},
    ],
)
def test_bad_fault_rules_get_400(executor, rules):
    response = executor.http("POST", "/v1/admin/faults", token=executor.admin_token, json=rules)
    assert_error_shape(response, 400, "invalid")
