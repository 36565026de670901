"""Log lines never carry secrets: the real logging configuration, real requests, a real database failure."""

import contextlib
import gc
import io
import json
import logging
import logging.config

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token

from observability.logging import logging_config
from observability.redaction import REDACTED, redact_event
from tests.factories import UserFactory

PASSWORD = "pw-Sup3rSecret-4711"


@contextlib.contextmanager
def captured_logs(log_format: str):
    """Every log line, rendered exactly as the deployed configuration renders it, into a buffer."""
    buffer = io.StringIO()
    config = logging_config(log_format=log_format, level="INFO")
    handler = {"class": "logging.StreamHandler", "formatter": "structlog", "stream": buffer}
    config["handlers"]["console"] = handler
    logging.config.dictConfig(config)
    try:
        yield buffer
    finally:
        logging.config.dictConfig(settings.LOGGING)
        # Rendered tracebacks leave cycles behind; collect them here rather than in a pause that lands in a
        # later, timing-sensitive test (the queue's backoff tests allow ~0.1 s).
        gc.collect()


def statement_timeout_on(table: str):
    """An execute wrapper that makes PostgreSQL cancel, for real, the first query touching ``table``."""

    def wrapper(execute, sql, params, many, context):
        if table not in sql:
            return execute(sql, params, many, context)
        execute("SET statement_timeout = 20", None, False, context)
        try:
            return execute("SELECT pg_sleep(2)", None, False, context)
        finally:
            execute("SET statement_timeout = 0", None, False, context)

    return wrapper


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


@pytest.fixture
def signed_up(transactional_db):
    user = UserFactory(username="alice")
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_a_database_error_during_sign_in_logs_neither_password_nor_token(signed_up, log_format):
    token = Token.objects.create(user=signed_up)
    client = Client(raise_request_exception=False)
    with captured_logs(log_format) as logs, connection.execute_wrapper(statement_timeout_on("auth_user")):
        body = {"username": "alice", "password": PASSWORD}
        response = client.post("/api/auth/token/", body, content_type="application/json")
    assert response.status_code == 500
    output = logs.getvalue()
    assert "statement timeout" in output  # the failure itself is logged, with its traceback
    assert PASSWORD not in output
    assert token.key not in output
    if log_format == "json":
        assert any("exception" in line for line in json_lines(output))


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_a_database_error_during_token_authentication_does_not_log_the_token(signed_up, log_format):
    token = Token.objects.create(user=signed_up)
    client = Client(raise_request_exception=False)
    failing_lookup = connection.execute_wrapper(statement_timeout_on("authtoken_token"))
    with captured_logs(log_format) as logs, failing_lookup:
        response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 500
    output = logs.getvalue()
    assert "statement timeout" in output
    assert token.key not in output


def test_secrets_in_messages_and_fields_are_redacted_in_the_rendered_line(db):
    key = "0123456789abcdef0123456789abcdef01234567"
    with captured_logs("json") as logs:
        logging.getLogger("some.library").warning("retrying with Authorization: Token %s", key)
        logging.getLogger("other").info("GET /api/x?token=%s&page=2 with Bearer %s", key, key)
        logging.getLogger("psycopg").error("cannot reach postgres://cp:%s@db:5432/cp", key)
        try:
            raise RuntimeError(f"upstream refused password={key}")
        except RuntimeError:
            logging.getLogger("other").exception("call failed")
    output = logs.getvalue()
    assert key not in output
    assert "page=2" in output
    assert output.count(REDACTED) >= 5
    assert "postgres://cp:[REDACTED]@db:5432/cp" in output


def test_credential_keys_are_redacted_at_any_depth_and_flags_stay_readable():
    event = {
        "event": "executor_call",
        "headers": {"Authorization": "Bearer abc", "Accept": "application/json"},
        "tool_gateway": {"url": "http://cp/api", "token": "gw-secret"},
        "executor_token": "ex-secret",
        "password": "pw",
        "OPENAI_API_KEY": "sk-x",
        "client_secret": "cs",
        "token_set": True,
        "prompt_tokens": 12,
        "idempotency_key": "order-7",
    }
    redacted = redact_event(None, "info", event)
    assert redacted["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert redacted["tool_gateway"] == {"url": "http://cp/api", "token": REDACTED}
    for name in ["executor_token", "password", "OPENAI_API_KEY", "client_secret"]:
        assert redacted[name] == REDACTED, name
    assert (redacted["token_set"], redacted["prompt_tokens"]) == (True, 12)
    assert redacted["idempotency_key"] == "order-7"
