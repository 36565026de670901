"""JSON bodies are read strictly (controlplane.api.StrictJSONParser): what PostgreSQL cannot store, what
would blow Python's stack and what is not JSON are 400s naming where, before anything is written."""

import json

import pytest

from run_queue.models import QueueEntry
from runs.models import Run, RunEvent, Session
from tests.factories import AppFactory


@pytest.fixture
def app(db):
    return AppFactory(slug="demo")


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def row_counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Session, Run, RunEvent, QueueEntry))


def post_raw(client, body: bytes | str, content_type="application/json", path="/api/runs/"):
    return client.generic("POST", path, body, content_type=content_type)


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "detail"}
    assert error["code"] == code, error
    return error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"app": "demo", "input": {"k": "a\\u0000b"}}', "input.k"),
        ('{"app": "demo", "input": {"a\\u0000": 1}}', "input"),
        ('{"app": "demo", "input": {"k": ["\\ud800"]}}', "input.k[0]"),
        ('{"app": "demo", "input": {"k": 1e999}}', "input.k"),
        ('{"app": "demo\\u0000"}', "app"),
        (json.dumps({"app": "demo", "input": nested(70)}), "input.a.a.a"),
    ],
)
def test_unstorable_json_is_400_naming_the_field_and_writes_nothing(api_as, member, app, body, field):
    before = row_counts()
    error = assert_error(post_raw(api_as(member), body), 400, "invalid")
    assert any(key.startswith(field) for key in error["detail"]), error["detail"]
    assert row_counts() == before


def test_json_nested_within_the_limit_is_stored(api_as, member, app):
    body = json.dumps({"app": "demo", "input": nested(60)})
    assert post_raw(api_as(member), body).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,  # Python's json recurses: RecursionError
        '{"app": "demo", "input": {"k": NaN}}',
        '{"app": "demo", "input": {"k": ' + "1" * 5000 + "}}",  # int() refuses 4,300+ digits
        b'{"app": "demo", "input": {"k": "\xff"}}',  # not UTF-8
        "{",
    ],
)
def test_malformed_json_is_400_parse_error(api_as, member, app, body):
    before = row_counts()
    assert_error(post_raw(api_as(member), body), 400, "parse_error")
    assert row_counts() == before


def test_a_form_body_is_415(api_as, member, app):
    response = post_raw(api_as(member), "app=demo", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/human-loop/reply",
            '{"request_id": "00000000-0000-0000-0000-000000000001", "answer": "\\ud83d"}',
            "answer",
        ),
        ("/api/auth/token/", '{"username": "x\\u0000", "password": "y"}', "username"),
    ],
)
def test_every_json_endpoint_refuses_unstorable_strings(api_as, member, path, body, field):
    error = assert_error(post_raw(api_as(member), body, path=path), 400, "invalid")
    assert field in error["detail"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page": "١"}, "page"),
        ({"page": "0"}, "page"),
        ({"page": "9" * 5000}, "page"),
        ({"page_size": "١٠"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "501"}, "page_size"),
        ({"page_size": "-5"}, "page_size"),
    ],
)
@pytest.mark.parametrize("path", ["/api/runs/", "/api/human-loop/pending"])
def test_pagination_numbers_are_strict(api_as, member, path, query, field):
    error = assert_error(api_as(member).get(path, query), 400, "invalid")
    assert field in error["detail"]


def test_pagination_still_pages(api_as, member, app):
    client = api_as(member)
    for _ in range(3):
        assert client.post("/api/runs/", {"app": "demo"}, format="json").status_code == 201
    page = client.get("/api/runs/", {"page_size": "2", "page": "2"}).json()
    assert (page["count"], len(page["results"])) == (3, 1)
    assert len(client.get("/api/runs/", {"page_size": "2", "page": "last"}).json()["results"]) == 1
    assert_error(client.get("/api/runs/", {"page": "3", "page_size": "2"}), 404, "not_found")
