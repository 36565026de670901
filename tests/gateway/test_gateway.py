"""The tool gateway over HTTP (Django's test client, PostgreSQL, the Redis cache): every check answers with
the one error shape and leaves its audit row; the plugin runs within its limits."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.core import signing
from django.db import OperationalError, connection
from django.utils import timezone

from agents.plugins import tokens
from core.tracing import run_traceparent
from gateway import calls
from gateway.models import Outcome, PluginCall
from observability.models import Span
from runs.models import RunEvent, RunStatus
from tests.executor_support import wait_until
from tests.gateway import plugins as test_plugins

pytestmark = pytest.mark.django_db


def only_call() -> PluginCall:
    (call,) = PluginCall.objects.all()
    return call


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


# --- a call that works ---------------------------------------------------------------------------------
def test_a_call_answers_the_result_and_leaves_an_audit_row(gateway_run, gateway):
    run, token = gateway_run()
    response = gateway.call(run, "echo", {"message": "hi"}, token=token, tool_call_id="call_1")
    assert response.status_code == 200, response.content
    assert response.json() == {"result": {"echo": {"message": "hi"}}, "call_id": "call_1"}
    call = only_call()
    assert (call.run_id, call.app_slug, call.plugin, call.call_id) == (run.pk, run.app.slug, "echo", "call_1")
    assert (call.outcome, call.status, call.error_code) == (Outcome.OK, 200, "")
    assert call.arguments == {"message": "hi"}
    assert call.trace_id == run.trace_id  # tracing off: the run's trace id
    assert call.request_bytes == len(b'{"message": "hi"}')
    assert call.response_bytes == len(b'{"echo": {"message": "hi"}}')
    assert call.duration_ms >= call.plugin_ms >= 0
    # The executor said it emits the events itself (Tool-Call-Id): the gateway added none.
    assert not RunEvent.objects.filter(run=run).exists()


def test_without_a_call_id_the_gateway_puts_the_call_on_the_runs_stream(gateway_run, gateway):
    run, token = gateway_run()
    response = gateway.call(run, "echo", {"message": "hi", "api_key": "sk-123"}, token=token)
    assert response.status_code == 200
    call_id = response.json()["call_id"]
    assert call_id.startswith("gw_")
    events = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", "type", "data"))
    assert events == [
        (
            1,
            "tool.call",
            {"call_id": call_id, "name": "echo", "arguments": {"message": "hi", "api_key": "[redacted]"}},
        ),
        (
            2,
            "tool.result",
            {"call_id": call_id, "ok": True, "result": {"echo": {"message": "hi", "api_key": "sk-123"}}},
        ),
    ]
    run.refresh_from_db()
    assert run.last_seq == 2
    assert only_call().arguments == {"message": "hi", "api_key": "[redacted]"}


def test_a_failed_call_the_gateway_emitted_ends_with_a_failed_result(gateway_run, gateway):
    run, token = gateway_run("refuse")
    response = gateway.call(run, "refuse", token=token)
    assert response.status_code == 422
    call_event, result_event = RunEvent.objects.filter(run=run).order_by("seq")
    assert result_event.data == {
        "call_id": call_event.data["call_id"],
        "ok": False,
        "error": {"code": "host_not_allowed", "message": "No.", "status": 422},
    }


# --- the token ------------------------------------------------------------------------------------------
def test_no_token_is_401_and_audited(gateway_run, gateway):
    run, _ = gateway_run()
    response = gateway.call(run, "echo", token=None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error(response)["code"] == "invalid_token"
    call = only_call()
    assert (call.outcome, call.status, call.error_code, call.run_id) == (
        Outcome.REFUSED,
        401,
        "invalid_token",
        run.pk,
    )


def test_a_forged_token_is_401(gateway_run, gateway):
    run, token = gateway_run()
    payload, _, signature = token.rpartition(":")
    forged = signing.Signer(key="not-the-secret-key", salt=tokens.SALT, algorithm="sha256").sign_object(
        {"r": run.pk.hex, "p": ["echo"], "e": int(time.time()) + 3600}
    )
    flipped = f"{payload}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}"
    other_salt = signing.Signer(salt="another-purpose", algorithm="sha256").sign_object(
        {"r": run.pk.hex, "p": ["echo"], "e": int(time.time()) + 3600}
    )
    for bad in (forged, flipped, other_salt, "garbage", token + "x"):
        response = gateway.call(run, "echo", token=bad)
        assert response.status_code == 401, bad
        assert error(response)["code"] == "invalid_token"
    assert PluginCall.objects.filter(error_code="invalid_token").count() == 5


def test_an_expired_token_is_401(gateway_run, gateway):
    run, _ = gateway_run()
    expired = tokens.mint(run_id=run.pk, plugins=["echo"], expires_at=timezone.now() - timedelta(seconds=1))
    response = gateway.call(run, "echo", token=expired)
    assert (response.status_code, error(response)["code"]) == (401, "token_expired")
    assert only_call().error_code == "token_expired"


def test_another_runs_token_is_403(gateway_run, gateway):
    run, _ = gateway_run()
    _other, other_token = gateway_run()
    response = gateway.call(run, "echo", token=other_token)
    assert (response.status_code, error(response)["code"]) == (403, "token_not_for_run")
    call = only_call()
    assert (call.run_id, call.outcome) == (run.pk, Outcome.REFUSED)


@pytest.mark.parametrize(
    "status", [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT]
)
def test_the_token_of_a_finished_run_is_403(gateway_run, gateway, status):
    run, token = gateway_run(status=status)
    response = gateway.call(run, "echo", token=token)
    assert (response.status_code, error(response)["code"]) == (403, "run_finished")
    assert only_call().error_code == "run_finished"


def test_a_token_for_a_run_that_does_not_exist_is_404(gateway_run, gateway):
    run, _ = gateway_run()
    ghost = type(run)(pk=uuid.uuid4())
    token = tokens.mint(run_id=ghost.pk, plugins=["echo"], expires_at=timezone.now() + timedelta(hours=1))
    response = gateway.call(ghost, "echo", token=token)
    assert (response.status_code, error(response)["code"]) == (404, "not_found")
    assert only_call().run_id == ghost.pk  # recorded, though no such run exists (no constraint)


# --- the whitelist and the app's declaration --------------------------------------------------------------
def test_a_plugin_not_enabled_is_403_even_when_declared(gateway_run, gateway, enabled):
    run, token = gateway_run("strict")
    enabled("echo")  # an operator took strict off the whitelist
    response = gateway.call(run, "strict", {"url": "x"}, token=token)
    assert (response.status_code, error(response)["code"]) == (403, "plugin_not_enabled")
    assert only_call().plugin == "strict"
    response = gateway.call(run, "no_such_plugin", token=token)
    assert (response.status_code, error(response)["code"]) == (403, "plugin_not_enabled")


def test_a_plugin_enabled_but_not_declared_by_the_app_is_403(gateway_run, gateway, enabled):
    run, token = gateway_run()
    enabled("echo", "strict")
    response = gateway.call(run, "strict", {"url": "x"}, token=token)
    assert (response.status_code, error(response)["code"]) == (403, "plugin_not_declared")
    # Declared now, but not when the token was minted: still no.
    run.app.plugins = ["echo", "strict"]
    run.app.save()
    response = gateway.call(run, "strict", {"url": "x"}, token=token)
    assert (response.status_code, error(response)["code"]) == (403, "plugin_not_declared")
    # In the token, but the app has stopped declaring it since.
    run2, token2 = gateway_run("strict")
    run2.app.plugins = ["echo"]
    run2.app.save()
    response = gateway.call(run2, "strict", {"url": "x"}, token=token2)
    assert (response.status_code, error(response)["code"]) == (403, "plugin_not_declared")
    assert PluginCall.objects.filter(error_code="plugin_not_declared").count() == 3


# --- arguments --------------------------------------------------------------------------------------------
def test_arguments_off_the_schema_are_400_naming_each_field(gateway_run, gateway):
    run, token = gateway_run("strict")
    response = gateway.call(run, "strict", {"options": {"depth": 9}, "extra": 1}, token=token)
    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "invalid_arguments"
    assert set(body["detail"]) == {"url", "options.depth", "(arguments)"}
    assert "9 is greater than the maximum of 3" in body["detail"]["options.depth"]
    assert "extra" in body["detail"]["(arguments)"]
    assert only_call().outcome == Outcome.INVALID


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"{not json", "invalid_json"), (b"[1, 2]", "invalid_arguments"), (b"\xff\xfe", "invalid_json")],
)
def test_a_body_that_is_not_a_json_object_is_400(gateway_run, gateway, body, code):
    run, token = gateway_run()
    response = gateway.call(run, "echo", token=token, body=body)
    assert (response.status_code, error(response)["code"]) == (400, code)
    assert only_call().outcome == Outcome.INVALID


def test_secret_arguments_are_redacted_in_the_audit(gateway_run, gateway):
    run, token = gateway_run("strict")
    gateway.call(
        run, "strict", {"url": "u", "pin": "1234", "options": {"Password": "p", "depth": 1}}, token=token
    )
    assert only_call().arguments == {
        "url": "u",
        "pin": "[redacted]",
        "options": {"Password": "[redacted]", "depth": 1},
    }


def test_long_arguments_are_cut_in_the_audit(gateway_run, gateway):
    run, token = gateway_run()
    response = gateway.call(run, "echo", {"message": "y" * 9_000}, token=token)
    assert response.status_code == 200
    arguments = only_call().arguments
    assert arguments["_cut"] is True
    assert len(arguments["preview"]) <= calls.AUDIT_ARGUMENTS_MAX


# --- plugin failures: errors, never a 500 -----------------------------------------------------------------
def test_an_exception_inside_a_plugin_is_502_with_its_class_audited(gateway_run, gateway):
    run, token = gateway_run("crash")
    response = gateway.call(run, "crash", token=token)
    assert (response.status_code, error(response)["code"]) == (502, "plugin_failed")
    assert "division" not in response.content.decode()  # the exception's text stays in the log
    call = only_call()
    assert (call.outcome, call.error_class) == (Outcome.ERROR, "ZeroDivisionError")


def test_a_plugins_own_error_is_passed_on(gateway_run, gateway):
    run, token = gateway_run("refuse")
    response = gateway.call(run, "refuse", token=token)
    assert response.status_code == 422
    assert error(response) == {
        "code": "host_not_allowed",
        "message": "No.",
        "detail": {"host": "example.org"},
    }
    assert (only_call().outcome, only_call().error_class) == (Outcome.ERROR, "PluginError")


def test_a_slow_plugin_is_cut_at_its_timeout_and_keeps_its_slot_until_it_returns(gateway_run, gateway):
    run, token = gateway_run("slow")
    test_plugins.released.clear()
    try:
        started = time.monotonic()
        response = gateway.call(run, "slow", {"seconds": 30}, token=token)
        assert time.monotonic() - started < 2
        assert (response.status_code, error(response)["code"]) == (504, "plugin_timeout")
        assert only_call().outcome == Outcome.TIMEOUT
        # Still running on the pool: slow's one slot is taken, so the next call is refused at once.
        response = gateway.call(run, "slow", {"seconds": 30}, token=token)
        assert (response.status_code, error(response)["code"]) == (429, "gateway_busy")
        assert response["Retry-After"] == "1"
    finally:
        test_plugins.released.set()
    # Once it has returned, its slot is free again.
    wait_until(lambda: calls._slots_of(test_plugins.SLOW)._value == 1, what="the slot to be released")
    test_plugins.released.clear()
    response = gateway.call(run, "slow", {"seconds": 0}, token=token)
    assert response.status_code == 200


def test_the_gateway_refuses_past_its_own_concurrency(gateway_run, gateway, settings):
    run, token = gateway_run()
    slots = calls._gateway_slots()
    taken = 0
    while slots.acquire(blocking=False):
        taken += 1
    try:
        assert taken == settings.TOOL_GATEWAY_CONCURRENCY
        response = gateway.call(run, "echo", token=token)
        assert (response.status_code, error(response)["code"]) == (429, "gateway_busy")
    finally:
        for _ in range(taken):
            slots.release()
    assert gateway.call(run, "echo", token=token).status_code == 200


def test_a_result_over_its_size_limit_is_502(gateway_run, gateway):
    run, token = gateway_run("huge")
    response = gateway.call(run, "huge", token=token)
    assert (response.status_code, error(response)["code"]) == (502, "result_too_large")
    assert error(response)["detail"]["max_bytes"] == 1_000


def test_a_result_off_its_schema_is_502(gateway_run, gateway):
    run, token = gateway_run("off_schema")
    response = gateway.call(run, "off_schema", token=token)
    assert (response.status_code, error(response)["code"]) == (502, "bad_result")
    assert "count" in error(response)["detail"]


# --- rate limits ------------------------------------------------------------------------------------------
def test_a_plugins_per_run_rate_limit_is_429_with_retry_after(gateway_run, gateway):
    run, token = gateway_run("limited")
    statuses = [gateway.call(run, "limited", token=token).status_code for _ in range(4)]
    if statuses != [200, 200, 200, 429]:  # the four calls straddled a minute's boundary: once more
        statuses = [gateway.call(run, "limited", token=token).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = gateway.call(run, "limited", token=token)
    assert error(response)["detail"]["limit"] == "plugin"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert PluginCall.objects.filter(outcome=Outcome.RATE_LIMITED).exists()
    # Another run has its own budget.
    other, other_token = gateway_run("limited")
    assert gateway.call(other, "limited", token=other_token).status_code == 200


def test_a_runs_rate_limit_counts_every_plugin(gateway_run, gateway, settings):
    settings.TOOL_GATEWAY_RUN_RATE = 2
    run, token = gateway_run("strict")
    first = [
        gateway.call(run, "echo", token=token).status_code,
        gateway.call(run, "strict", {"url": "u"}, token=token).status_code,
    ]
    response = gateway.call(run, "echo", token=token)
    if first != [200, 200] or response.status_code != 429:  # straddled a minute: once more
        run, token = gateway_run("strict")
        gateway.call(run, "echo", token=token)
        gateway.call(run, "strict", {"url": "u"}, token=token)
        response = gateway.call(run, "echo", token=token)
    assert (response.status_code, error(response)["detail"]["limit"]) == (429, "run")


# --- tracing ----------------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_each_call_is_a_span_in_the_runs_trace(gateway_run, gateway, local_tracing):
    run, token = gateway_run("crash")
    parent = run_traceparent(run.trace_id, run.pk)
    assert gateway.call(run, "echo", token=token, traceparent=parent).status_code == 200
    assert gateway.call(run, "crash", token=token, traceparent=parent).status_code == 502
    local_tracing.flush()
    spans = {span.name: span for span in Span.objects.filter(trace_id=run.trace_id)}
    assert set(spans) == {"plugin.echo", "plugin.crash"}
    ok, failed = spans["plugin.echo"], spans["plugin.crash"]
    assert ok.parent_id == failed.parent_id == run.pk.hex[:16]
    assert (ok.kind, ok.status) == ("server", "unset")
    assert (ok.attributes["run.id"], ok.attributes["plugin.outcome"]) == (str(run.pk), "ok")
    assert (failed.status, failed.attributes["error.type"]) == ("error", "ZeroDivisionError")
    calls_by_plugin = {c.plugin: c for c in PluginCall.objects.all()}
    assert calls_by_plugin["echo"].span_id == ok.span_id
    assert calls_by_plugin["crash"].span_id == failed.span_id


def test_the_audit_row_survives_when_the_call_fails_after_the_plugin(gateway_run, gateway, monkeypatch):
    """The plugin has run; its result cannot be put on the run's stream (the database refuses): the agent
    gets a 503, not a 500, and the call is still on record."""
    run, token = gateway_run()
    real_append = calls.append_events

    def failing_append(*, run_id, events, **kwargs):
        if events[0].type == "tool.result":
            raise OperationalError("the database went away")
        return real_append(run_id=run_id, events=events, **kwargs)

    monkeypatch.setattr(calls, "append_events", failing_append)
    response = gateway.call(run, "echo", token=token)
    assert (response.status_code, error(response)["code"]) == (503, "unavailable")
    call = only_call()
    assert (call.outcome, call.error_class, call.status) == (Outcome.ERROR, "OperationalError", 503)
    assert list(RunEvent.objects.filter(run=run).values_list("type", flat=True)) == ["tool.call"]


def test_calls_from_many_threads_are_each_recorded_once(gateway_run, transactional_db):
    run, token = gateway_run()
    from tests.gateway.conftest import GatewayClient

    statuses: list[int] = []

    def call() -> None:
        try:
            response = GatewayClient().call(run, "echo", {"message": "m"}, token=token, tool_call_id="c")
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert PluginCall.objects.filter(run=run, outcome=Outcome.OK).count() == 8


# --- a run's calls, for its readers -------------------------------------------------------------------------
def test_a_runs_calls_are_listed_for_its_readers_only(gateway_run, gateway, api_as, outsider):
    run, token = gateway_run("crash")
    gateway.call(run, "echo", {"message": "hi"}, token=token, tool_call_id="call_1")
    gateway.call(run, "crash", token=token, tool_call_id="call_2")
    owner = api_as(run.user)
    page = owner.get(f"/api/runs/{run.pk}/tool-calls").json()
    assert [(c["plugin"], c["call_id"], c["outcome"], c["status"]) for c in page["results"]] == [
        ("echo", "call_1", "ok", 200),
        ("crash", "call_2", "error", 502),
    ]
    assert page["more"] is False
    assert "arguments" not in page["results"][0]  # those stay in the admin's audit
    after = page["results"][0]["id"]
    later = owner.get(f"/api/runs/{run.pk}/tool-calls", {"after": after}).json()["results"]
    assert [c["call_id"] for c in later] == ["call_2"]
    assert owner.get(f"/api/runs/{run.pk}/tool-calls", {"after": "x"}).status_code == 400
    assert api_as(outsider).get(f"/api/runs/{run.pk}/tool-calls").status_code == 404
    assert gateway.client.get(f"/api/runs/{run.pk}/tool-calls").status_code in (401, 403)
