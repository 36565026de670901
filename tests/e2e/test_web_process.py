"""The web process under uvicorn (controlplane/asgi_handler.py): requests run on a fixed pool of threads
that keep their database connections, instead of a new thread (and a new connection) per request."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.e2e.conftest import Client
from tests.factories import UserFactory
from tests.stack import start_web

pytestmark = pytest.mark.slow
APP_NAME = "cp-web-thread-test"


def web_backends() -> set[tuple[int, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start::text FROM pg_stat_activity WHERE application_name = %s", [APP_NAME]
        )
        return set(cursor.fetchall())


def test_requests_share_a_fixed_set_of_threads_and_their_connections(transactional_db, tmp_path):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=UserFactory(username="threads")).key
    web, base = start_web(tmp_path, WEB_THREADS="2", PGAPPNAME=APP_NAME)
    try:
        client = Client(base, token)
        for _ in range(20):
            assert client.get("/api/me/").status_code == 200
        first = web_backends()
        assert 1 <= len(first) <= 2  # at most one connection per thread, whatever the number of requests
        for _ in range(20):
            assert client.get("/api/runs/").status_code == 200
        after = web_backends()
        # The same connections (a second thread of the two may have joined in), not new ones per request.
        assert first <= after
        assert len(after) <= 2
    finally:
        web.stop()
