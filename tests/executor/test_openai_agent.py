"""The openai agent against a fake OpenAI-compatible server (the one stand-in allowed: a remote LLM)."""

import json
import uuid

import pytest

from tests.executor_support import RecordingServer, start_body, start_executor, stop_process


def sse(*chunks):
    lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


def delta(**fields):
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": fields}]}


def fake_model(request):
    """First turn: some text and a word_count call whose arguments arrive in two pieces; then an answer."""
    messages = request.body["messages"]
    if messages[-1]["role"] == "tool":
        return 200, sse(delta(content="There are "), delta(content="3 words."), delta())
    call_start = {
        "index": 0,
        "id": "call_abc",
        "type": "function",
        "function": {"name": "word_count", "arguments": '{"text": "one '},
    }
    call_end = {"index": 0, "function": {"arguments": 'two three"}'}}
    return 200, sse(
        delta(content="Let me count."), delta(tool_calls=[call_start]), delta(tool_calls=[call_end])
    )


@pytest.fixture(scope="module")
def llm():
    with RecordingServer(fake_model) as server:
        yield server


@pytest.fixture(scope="module")
def openai_executor(llm, tmp_path_factory):
    env = {"OPENAI_BASE_URL": f"{llm.url}/v1", "OPENAI_API_KEY": "sk-test", "OPENAI_MODEL": "fake-model"}
    executor = start_executor(tmp_path_factory.mktemp("openai"), env=env)
    yield executor
    stop_process(executor.process)


def test_the_openai_agent_streams_text_calls_tools_and_loops_until_the_model_stops(openai_executor, llm):
    client = openai_executor.client()
    run_id = str(uuid.uuid4())
    client.start_run(
        run_id=run_id,
        app="llm-app",
        agent={"kind": "openai"},
        prompt={"version": 1, "text": "You count words."},
        input={"message": "Count: one two three"},
    )
    events = list(client.iter_events(run_id))

    assert [e.type for e in events] == [
        "run.started",
        "message.delta",
        "message.stop",
        "tool.call",
        "tool.result",
        "message.delta",
        "message.delta",
        "message.stop",
        "run.finished",
    ]
    assert events[3].data == {
        "call_id": "call_abc",
        "name": "word_count",
        "arguments": {"text": "one two three"},
    }
    assert events[4].data == {"call_id": "call_abc", "ok": True, "result": {"words": 3}}
    assert events[5].data["message_id"] == events[6].data["message_id"] == "m2"
    assert events[-1].data == {"status": "succeeded"}

    first, second = llm.requests[-2:]
    assert first.path == "/v1/chat/completions"
    assert first.headers["Authorization"] == "Bearer sk-test"
    assert first.body["model"] == "fake-model"
    assert first.body["stream"] is True
    assert first.body["messages"][:2] == [
        {"role": "system", "content": "You count words."},
        {"role": "user", "content": "Count: one two three"},
    ]
    assert {tool["function"]["name"] for tool in first.body["tools"]} == {"clock", "word_count"}
    assistant, tool_message = second.body["messages"][2:]
    assert assistant["tool_calls"][0]["function"] == {
        "name": "word_count",
        "arguments": '{"text": "one two three"}',
    }
    assert tool_message == {"role": "tool", "tool_call_id": "call_abc", "content": '{"words": 3}'}


def test_an_llm_error_fails_the_run_with_the_status(openai_executor, llm):
    body = start_body(agent={"kind": "openai", "model": "missing-model"})
    original = llm.respond
    llm.respond = lambda request: (404, {"error": {"message": "no such model"}})
    try:
        openai_executor.http("POST", "/v1/runs", json=body)
        events = list(openai_executor.client().iter_events(body["run_id"]))
    finally:
        llm.respond = original
    assert events[-1].data["status"] == "failed"
    assert events[-1].data["error"]["code"] == "llm_error"
    assert "404" in events[-1].data["error"]["message"]


def test_the_openai_agent_offers_the_runs_plugins_and_calls_them_through_the_gateway(openai_executor, llm):
    """The model is offered the run's plugins (not the built-ins); its call goes to the tool gateway with the
    run's token and its call id, and the gateway's result goes back to the model."""
    schema = {"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]}

    def gateway_answer(request):
        return 200, {"result": {"rows": [[3]], "row_count": 1}, "call_id": request.headers["Tool-Call-Id"]}

    def model(request):
        messages = request.body["messages"]
        if messages[-1]["role"] == "tool":
            return 200, sse(delta(content="There are 3."), delta())
        call = {"index": 0, "id": "call_sql", "type": "function"}
        call["function"] = {"name": "db_query", "arguments": '{"sql": "SELECT count(*) FROM t"}'}
        return 200, sse(delta(tool_calls=[call]))

    llm.respond = model
    try:
        with RecordingServer(gateway_answer) as gateway:
            client = openai_executor.client()
            run_id = str(uuid.uuid4())
            client.start_run(
                run_id=run_id,
                app="llm-app",
                agent={"kind": "openai"},
                prompt={"version": 1, "text": "You query."},
                input={"message": "How many?"},
                plugins=[{"name": "db_query", "description": "One read-only SELECT.", "schema": schema}],
                tool_gateway={"url": f"{gateway.url}/api/runs/{run_id}/tools", "token": "tok-run"},
            )
            events = list(client.iter_events(run_id))
    finally:
        llm.respond = fake_model
    first, second = llm.requests[-2:]
    assert first.body["tools"] == [
        {
            "type": "function",
            "function": {"name": "db_query", "description": "One read-only SELECT.", "parameters": schema},
        }
    ]
    [call] = gateway.requests
    assert call.path == f"/api/runs/{run_id}/tools/db_query"
    assert call.headers["Authorization"] == "Bearer tok-run"
    assert call.headers["Tool-Call-Id"] == "call_sql"
    assert call.body == {"sql": "SELECT count(*) FROM t"}
    result = next(e for e in events if e.type == "tool.result")
    assert result.data == {"call_id": "call_sql", "ok": True, "result": {"rows": [[3]], "row_count": 1}}
    assert second.body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_sql",
        "content": json.dumps({"rows": [[3]], "row_count": 1}),
    }
    assert events[-1].data == {"status": "succeeded"}
