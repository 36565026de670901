"""Property test: whatever a client sends to any route, signed in or not, the answer is never a 5xx, a 4xx
writes nothing, and every 4xx of the API (and the health probes) is the one JSON error shape; the portal's
pages and forms answer theirs as pages.

Routes come from the URLconf (a new endpoint is covered without touching this file); query parameter
names from the OpenAPI schema plus the ones every view might read. Streaming answers are closed without
being read, so no example waits on a run that never ends.
"""

from __future__ import annotations

import json
import re
import uuid
from functools import cache
from urllib.parse import quote, urlencode

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections, connection
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from controlplane.middleware import JSON_PATHS
from run_queue.models import QueueEntry
from runs.models import HumanLoopRequest, Run, RunEvent, Session, Todo
from tests.factories import AppFactory, UserFactory

TABLES = (Session, Run, RunEvent, QueueEntry, Todo, HumanLoopRequest, Token)
COUNTS_SQL = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{model._meta.db_table}")' for model in TABLES)
COMMON_PARAMS = ["after", "limit", "page", "page_size", "lastEventId", "status", "app", "session", "format"]
CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


def served_methods(callback) -> list[str]:
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view is None:
        return ["GET"]
    return [
        method.upper() for method in view.http_method_names if method != "options" and hasattr(view, method)
    ]


def api_routes() -> list[tuple[str, str]]:
    """(route, method) for every route of the URLconf outside the admin and every method it serves, plus
    "other" (any method: mostly a 405). Routes are templates like ``/api/runs/<uuid:run_id>/``."""
    routes: set[tuple[str, str]] = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                route = "/" + prefix + str(pattern.pattern).lstrip("^").rstrip("$")
                routes.update((route, method) for method in [*served_methods(pattern.callback), "other"])

    walk(get_resolver().url_patterns, "")
    return sorted(route for route in routes if not route[0].startswith("/admin/"))


@cache
def schema_params() -> dict[str, set[str]]:
    """Query parameter names by schema path (``/api/runs/{run_id}/events``)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        path: {p["name"] for op in ops.values() for p in op.get("parameters", []) if p["in"] == "query"}
        for path, ops in schema["paths"].items()
    }


def query_names(route: str) -> list[str]:
    schema_path = CONVERTER.sub(lambda m: "{" + m.group(2) + "}", route)
    return sorted(schema_params().get(schema_path, set()) | set(COMMON_PARAMS))


NASTY = st.sampled_from(
    [
        "",
        "0",
        "1",
        "-1",
        "١٢",
        "1e3",
        "9" * 5000,
        str(2**31),
        str(2**31 - 1),
        "\x00",
        "a\x00b",
        "run-x:1",
        "run-x:١",
        str(uuid.uuid4()),
        "{" + str(uuid.UUID(int=0)) + "}",
        "last",
        "queued",
        "demo",
        "sse",
        "json",
        "%00",
        "\ud800",
        "中文",
    ]
)
# Mostly the values known to hurt, some anything.
TEXT = st.one_of(NASTY, NASTY, NASTY, st.text(max_size=30), st.integers().map(str))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
FIELDS = ["app", "input", "session_id", "multitask", "request_id", "answer", "username", "password"]
# Bodies that pass the first checks (the app exists, input is an object) reach the database.
LIKELY = {
    "app": st.just("demo") | TEXT,
    "input": st.dictionaries(TEXT, JSON, max_size=4),
    "session_id": st.just(str(uuid.uuid4())) | TEXT,
    "multitask": st.sampled_from(["reject", "enqueue"]) | TEXT,
    "request_id": st.just(str(uuid.uuid4())) | TEXT,
    "answer": TEXT,
}
BODY_OBJECT = st.fixed_dictionaries({}, optional=LIKELY) | st.dictionaries(
    st.sampled_from(FIELDS) | TEXT, JSON, max_size=6
)


def encode(document) -> bytes:
    return json.dumps(document).encode()


# A start the API accepts, but for what else the request carries (headers, query, nested input).
VALID_START = st.fixed_dictionaries(
    {"app": st.just("demo")},
    optional={"input": st.dictionaries(TEXT, JSON, max_size=4), "multitask": st.just("enqueue")},
)
BODY = st.one_of(
    VALID_START.map(encode),
    VALID_START.map(encode),
    VALID_START.map(encode),
    BODY_OBJECT.map(encode),
    JSON.map(encode),
    st.binary(max_size=50),
    st.just(b"[" * 5000 + b"]" * 5000),
    st.integers(min_value=60, max_value=80).map(
        lambda depth: b'{"input":' + b'{"a":' * depth + b"1" + b"}" * (depth + 1)
    ),
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "HTTP_LAST_EVENT_ID": TEXT,
        "HTTP_IDEMPOTENCY_KEY": TEXT,
        "HTTP_ACCEPT": st.sampled_from(["text/event-stream", "application/json", "text/html", "*/*", "x/y"]),
        "CONTENT_TYPE": st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded"]
        ),
    },
)
METHODS = st.sampled_from(ALL_METHODS)


def path_value(run_id: str):
    return st.one_of(st.just(run_id), st.just(run_id), st.just(str(uuid.uuid4())), TEXT)


def concrete(route: str, values: dict[str, str], tail: str) -> str:
    # surrogatepass: a lone surrogate goes out as the invalid UTF-8 a client could send
    path = CONVERTER.sub(lambda m: quote(values[m.group(2)], safe="", errors="surrogatepass"), route)
    return path + quote(tail, safe="/", errors="surrogatepass") if route.endswith("/api/") else path


def counts() -> tuple[int, ...]:
    # One statement for every table: an example counts them twice, and seven queries each were half its time.
    with connection.cursor() as cursor:
        cursor.execute(COUNTS_SQL)
        return tuple(cursor.fetchone())


def check(method, response, before, *, json_errors: bool = True) -> None:
    status = response.status_code
    assert status < 500, (status, response.content[:500])
    if status >= 400:
        assert counts() == before, f"a {status} wrote rows"
        if not json_errors:
            return
        assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
        if method == "HEAD":
            return  # no body by definition
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "detail"}, body
    if response.streaming:
        close_unread(response)


def close_unread(response) -> None:
    """Close a stream without reading it (nothing here waits on a run), as the test client closes one:
    without closing the test's database connection from the request_finished signal."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


ROUTES = api_routes()


def test_the_routes_cover_the_api():
    expected = {
        ("/api/runs/", "GET"),
        ("/api/runs/", "POST"),
        ("/api/runs/start", "POST"),
        ("/api/runs/<uuid:run_id>/events", "GET"),
        ("/api/auth/token/", "POST"),
        ("/healthz", "GET"),
    }
    assert expected <= set(API_ROUTES)
    assert {("/portal/", "GET"), ("/accounts/login/", "POST")} <= set(PAGE_ROUTES)


@pytest.fixture
def cast(db):
    app = AppFactory(slug="demo", playbook="instant")
    user = UserFactory(username="fuzzer")
    client = APIClient()
    client.force_authenticate(user=user)
    run_id = client.post("/api/runs/", {"app": app.slug}, format="json").json()["id"]
    return {"member": client, "anonymous": APIClient()}, run_id


FUZZ_SETTINGS = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
}
# The portal's pages and forms are thin (a page is a shell over the API, a form is Django's): fewer examples.
API_ROUTES = [(route, served) for route, served in ROUTES if route.startswith(JSON_PATHS)]
PAGE_ROUTES = [(route, served) for route, served in ROUTES if not route.startswith(JSON_PATHS)]


@pytest.mark.parametrize("who", ["member", "anonymous"])
@pytest.mark.parametrize(("route", "served"), API_ROUTES)
@settings(max_examples=30, **FUZZ_SETTINGS)
@given(data=st.data())
def test_no_input_makes_a_5xx_or_writes_on_a_4xx(cast, route, served, who, data):
    probe(cast, route, served, who, data)


@pytest.mark.parametrize("who", ["member", "anonymous"])
@pytest.mark.parametrize(("route", "served"), PAGE_ROUTES)
@settings(max_examples=10, **FUZZ_SETTINGS)
@given(data=st.data())
def test_no_input_to_a_page_makes_a_5xx_or_writes_on_a_4xx(cast, route, served, who, data):
    probe(cast, route, served, who, data)


def probe(cast, route, served, who, data) -> None:
    clients, run_id = cast
    names = [m.group(2) for m in CONVERTER.finditer(route)]
    values = {name: data.draw(path_value(run_id), label=name) for name in names}
    tail = data.draw(TEXT, label="tail") if route.endswith("/api/") else ""
    query = data.draw(
        st.dictionaries(st.sampled_from(query_names(route)) | TEXT, TEXT, max_size=4), label="query"
    )
    method = data.draw(METHODS, label="method") if served == "other" else served
    body = data.draw(BODY, label="body") if method in {"POST", "PUT", "PATCH"} else b""
    headers = data.draw(HEADERS, label="headers")
    headers.setdefault("CONTENT_TYPE", "application/json")
    path = concrete(route, values, tail)
    url = f"{path}?{urlencode(query, errors='surrogatepass')}" if query else path
    before = counts()
    response = clients[who].generic(method, url, body, **headers)
    check(method, response, before, json_errors=path.startswith(JSON_PATHS))
