import logging
import re

import pytest


def finished_lines(caplog):
    return [
        r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("event") == "request_finished"
    ]


def test_valid_incoming_request_id_is_echoed_and_logged(client, db, caplog):
    caplog.set_level(logging.INFO, logger="django_structlog")
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123.def")
    assert response["X-Request-ID"] == "abc-123.def"
    assert [line["request_id"] for line in finished_lines(caplog)] == ["abc-123.def"]


@pytest.mark.parametrize("bad", ["has space", "x" * 129, 'quote"d', "-leading-dash", ""])
def test_invalid_request_id_is_replaced_by_a_generated_one(client, db, bad, caplog):
    caplog.set_level(logging.INFO, logger="django_structlog")
    response = client.get("/healthz", HTTP_X_REQUEST_ID=bad)
    generated = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert [line["request_id"] for line in finished_lines(caplog)] == [generated]


def test_missing_request_id_is_generated_per_request(client, db):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert first != second


def test_api_errors_carry_the_request_id_header(api, db):
    response = api.get("/api/me/", HTTP_X_REQUEST_ID="trace-me")
    assert response.status_code == 401
    assert response["X-Request-ID"] == "trace-me"
