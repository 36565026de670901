"""Tools through the control plane's tool gateway: Bearer token, traceparent, the call's id and JSON arguments
arrive; the answer's ``result`` is the tool's result."""

from tests.executor_support import RecordingServer, start_body

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
PLUGIN = {"name": "http_fetch", "schema": {"type": "object", "properties": {"url": {"type": "string"}}}}


def run_demo_with_gateway(executor, gateway_url, plugins=(PLUGIN,), **fields):
    client = executor.client()
    body = start_body(
        playbook="demo",
        run_input={"delay_ms": 0, "message": "two words", "tool_arguments": {"url": "https://example.com/"}},
        plugins=list(plugins),
        tool_gateway={"url": f"{gateway_url}/api/runs/r1/tools", "token": "run-scoped-token"},
        **fields,
    )
    response = executor.http("POST", "/v1/runs", json=body, headers={"traceparent": TRACEPARENT})
    assert response.status_code == 201, response.text
    events = []
    for event in client.iter_events(body["run_id"]):
        events.append(event)
        if event.type == "human_loop.request":
            client.send_input(body["run_id"], request_id=event.data["request_id"], answer="approve")
    return events


def test_the_demo_calls_its_plugin_through_the_gateway_with_token_and_traceparent(executor):
    answer = {"result": {"status": 200, "body": "hello"}, "call_id": "call_1"}
    with RecordingServer(lambda request: (200, answer)) as gateway:
        events = run_demo_with_gateway(executor, gateway.url)
    [call] = gateway.requests
    assert call.path == "/api/runs/r1/tools/http_fetch"
    assert call.headers["Authorization"] == "Bearer run-scoped-token"
    assert call.headers["traceparent"] == TRACEPARENT
    assert call.headers["Tool-Call-Id"] == "call_1"  # it emits tool.call and tool.result itself
    assert call.body == {"url": "https://example.com/"}
    tool_call = next(e for e in events if e.type == "tool.call")
    tool_result = next(e for e in events if e.type == "tool.result")
    assert tool_call.data["name"] == "http_fetch"
    assert tool_result.data == {"call_id": "call_1", "ok": True, "result": {"status": 200, "body": "hello"}}
    assert events[-1].data == {"status": "succeeded"}


def test_a_gateway_error_becomes_a_failed_tool_result_not_a_failed_run(executor):
    refusal = {"error": {"code": "permission_denied", "message": "No.", "detail": None}}
    with RecordingServer(lambda request: (403, refusal)) as gateway:
        events = run_demo_with_gateway(executor, gateway.url)
    tool_result = next(e for e in events if e.type == "tool.result")
    assert tool_result.data["ok"] is False
    assert tool_result.data["error"]["code"] == "permission_denied"
    assert tool_result.data["error"]["status"] == 403
    assert events[-1].data == {"status": "succeeded"}


def test_an_unreachable_gateway_is_reported_in_the_tool_result(executor):
    with RecordingServer(lambda request: (200, {})) as gone:
        url = gone.url
    events = run_demo_with_gateway(executor, url)
    tool_result = next(e for e in events if e.type == "tool.result")
    assert tool_result.data["ok"] is False
    assert tool_result.data["error"]["code"] == "gateway_unreachable"


def test_a_run_with_a_gateway_but_no_plugins_uses_the_built_in_tools(executor):
    with RecordingServer(lambda request: (200, {})) as gateway:
        events = run_demo_with_gateway(executor, gateway.url, plugins=())
    assert gateway.requests == []
    tool_result = next(e for e in events if e.type == "tool.result")
    assert tool_result.data == {"call_id": "call_1", "ok": True, "result": {"words": 2}}


SQL_PLUGIN = {"name": "db_query", "schema": {"type": "object", "properties": {"sql": {"type": "string"}}}}


def run_tools(executor, gateway_url, run_input):
    client = executor.client()
    body = start_body(
        playbook="tools",
        run_input=run_input,
        plugins=[PLUGIN, SQL_PLUGIN],
        tool_gateway={"url": f"{gateway_url}/api/runs/r1/tools", "token": "run-scoped-token"},
    )
    response = executor.http("POST", "/v1/runs", json=body)
    assert response.status_code == 201, response.text
    return list(client.iter_events(body["run_id"]))


def test_the_tools_playbook_makes_the_calls_it_is_given_in_order(executor):
    def answer(request):
        if request.path.endswith("/db_query"):
            return 422, {"error": {"code": "statement_not_allowed", "message": "Only a query."}}
        return 200, {"result": {"status": 200, "size": 5}, "call_id": request.headers["Tool-Call-Id"]}

    calls = [
        {"tool": "http_fetch", "arguments": {"url": "https://example.com/a"}},
        {"tool": "db_query", "arguments": {"sql": "DELETE FROM t"}},
    ]
    with RecordingServer(answer) as gateway:
        events = run_tools(executor, gateway.url, {"calls": calls})
    assert [(r.path.rsplit("/", 1)[1], r.headers["Tool-Call-Id"], r.body) for r in gateway.requests] == [
        ("http_fetch", "call_1", {"url": "https://example.com/a"}),
        ("db_query", "call_2", {"sql": "DELETE FROM t"}),
    ]
    results = [e.data for e in events if e.type == "tool.result"]
    assert results[0] == {"call_id": "call_1", "ok": True, "result": {"status": 200, "size": 5}}
    assert results[1]["ok"] is False
    assert results[1]["error"]["code"] == "statement_not_allowed"
    text = "".join(e.data["text"] for e in events if e.type == "message.delta")
    assert "http_fetch got HTTP 200 (5 bytes)." in text
    assert "db_query failed: statement_not_allowed (Only a query.)." in text
    assert events[-1].data == {"status": "succeeded"}


def test_the_tools_playbook_reads_urls_and_sql_from_a_persons_message(executor):
    with RecordingServer(lambda request: (200, {"result": {}, "call_id": "x"})) as gateway:
        run_tools(executor, gateway.url, {"message": "see https://example.com/report, thanks"})
        run_tools(executor, gateway.url, {"message": "  select count(*) from incidents"})
        run_tools(executor, gateway.url, {"message": "hello"})  # nothing to call
    assert [r.body for r in gateway.requests] == [
        {"url": "https://example.com/report"},
        {"sql": "select count(*) from incidents"},
    ]


def test_malformed_calls_fail_the_run_with_invalid_input(executor):
    with RecordingServer(lambda request: (200, {"result": {}})) as gateway:
        events = run_tools(executor, gateway.url, {"calls": [{"tool": 3}]})
    assert not gateway.requests
    assert events[-1].data["status"] == "failed"
    assert events[-1].data["error"]["code"] == "invalid_input"
