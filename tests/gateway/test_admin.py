"""Plugin calls in the admin: the audit filtered by plugin, outcome and run, read-only."""

from __future__ import annotations

import pytest

from gateway.models import Outcome, PluginCall

pytestmark = pytest.mark.django_db


def make_calls(gateway_run, gateway):
    run, token = gateway_run("crash")
    gateway.call(
        run, "echo", {"message": "hello", "api_key": "sk-live-1"}, token=token, tool_call_id="call_1"
    )
    gateway.call(run, "crash", token=token, tool_call_id="call_2")
    other, other_token = gateway_run()
    gateway.call(other, "echo", token=other_token, tool_call_id="call_9")
    return run, other


def test_the_audit_filters_by_plugin_outcome_and_run(client, superuser, gateway_run, gateway):
    run, other = make_calls(gateway_run, gateway)
    client.force_login(superuser)
    page = client.get("/admin/gateway/plugincall/").content.decode()
    assert ">crash<" in page
    assert ">echo<" in page  # the plugin filter lists what was called
    failed = client.get("/admin/gateway/plugincall/", {"outcome__exact": Outcome.ERROR}).content.decode()
    assert "plugin_failed" in failed
    assert str(run.pk)[:8] in failed
    assert str(other.pk)[:8] not in failed  # its one call succeeded
    by_run = client.get("/admin/gateway/plugincall/", {"run": str(other.pk)}).content.decode()
    assert str(other.pk)[:8] in by_run
    assert str(run.pk)[:8] not in by_run
    by_plugin = client.get("/admin/gateway/plugincall/", {"plugin": "crash"}).content.decode()
    assert "plugin_failed" in by_plugin
    assert str(other.pk)[:8] not in by_plugin
    searched = client.get("/admin/gateway/plugincall/", {"q": "call_9"}).content.decode()
    assert str(other.pk)[:8] in searched
    assert str(run.pk)[:8] not in searched


def test_a_call_is_shown_redacted_and_cannot_be_added_changed_or_deleted(
    client, superuser, gateway_run, gateway
):
    make_calls(gateway_run, gateway)
    client.force_login(superuser)
    call = PluginCall.objects.get(call_id="call_1")
    page = client.get(f"/admin/gateway/plugincall/{call.pk}/change/").content.decode()
    assert "hello" in page
    assert "[redacted]" in page
    assert "sk-live-1" not in page
    assert client.get("/admin/gateway/plugincall/add/").status_code == 403
    response = client.post(f"/admin/gateway/plugincall/{call.pk}/change/", {"plugin": "renamed"})
    assert response.status_code == 403
    response = client.post(f"/admin/gateway/plugincall/{call.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert PluginCall.objects.get(pk=call.pk).plugin == "echo"
