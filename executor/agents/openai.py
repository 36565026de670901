"""An agent over any OpenAI-compatible chat-completions endpoint, with streaming and tool calling.

Each turn streams one completion: content deltas become ``message.delta`` (then ``message.stop``); the tool
calls the model asks for become ``tool.call``, run through ``executor.tools`` (the control plane's gateway
when the run has one) and answered with ``tool.result``; the loop ends when the model stops calling tools.
The HTTP call is blocking ``requests`` in a worker thread that hands each streamed chunk to the event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from executor.config import OpenAIConfig
from executor.runs import AgentFailure, Run
from executor.tools import ToolOutcome, ToolSpec, available_tools, call_tool

LLM_TIMEOUT_S = (10.0, 120.0)  # (connect, read between two streamed chunks)
DEFAULT_MAX_TURNS = 8
_END = object()


def check_spec(spec: dict[str, Any]) -> str | None:
    model, turns, temperature = spec.get("model"), spec.get("max_turns"), spec.get("temperature")
    if model is not None and (not isinstance(model, str) or not model):
        return "agent.model must be a non-empty string"
    if turns is not None and (not isinstance(turns, int) or isinstance(turns, bool) or not 1 <= turns <= 50):
        return "agent.max_turns must be an integer from 1 to 50"
    if temperature is not None and (
        not isinstance(temperature, int | float) or isinstance(temperature, bool) or not 0 <= temperature <= 2
    ):
        return "agent.temperature must be a number from 0 to 2"
    return None


@dataclass
class ToolCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class Completion:
    text: str = ""
    calls: dict[int, ToolCall] = field(default_factory=dict)

    def merge_tool_call(self, fragment: dict[str, Any]) -> None:
        call = self.calls.setdefault(int(fragment.get("index") or 0), ToolCall())
        call.id = fragment.get("id") or call.id
        function = fragment.get("function") or {}
        call.name += function.get("name") or ""
        call.arguments += function.get("arguments") or ""

    def as_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.calls.values()
            ]
        return message


def _tool_definition(tool: ToolSpec) -> dict[str, Any]:
    function = {"name": tool.name, "description": tool.description, "parameters": tool.schema}
    return {"type": "function", "function": function}


def _user_content(run: Run) -> str:
    message = run.input.get("message")
    return message if isinstance(message, str) else json.dumps(run.input)


def _pump(
    url: str, headers: dict[str, str], body: dict, put: Callable[[object], None], stop: threading.Event
) -> None:
    """In a worker thread: POST the completion request and hand each streamed JSON chunk to ``put``."""
    try:
        with requests.post(url, json=body, headers=headers, stream=True, timeout=LLM_TIMEOUT_S) as response:
            if response.status_code >= 400:
                put(AgentFailure("llm_error", f"HTTP {response.status_code}: {response.text[:300]}"))
                return
            for line in response.iter_lines():
                if stop.is_set():
                    return
                data = line[5:].strip() if line.startswith(b"data:") else b""
                if data == b"[DONE]":
                    return
                if data:
                    put(json.loads(data))
    except (requests.RequestException, ValueError) as exc:
        put(AgentFailure("llm_unreachable", f"{type(exc).__name__}: {exc}"[:300]))
    finally:
        put(_END)


async def _stream_chunks(url: str, headers: dict[str, str], body: dict) -> AsyncIterator[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def put(item: object) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    loop.run_in_executor(None, _pump, url, headers, body, put, stop)
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, AgentFailure):
                raise item
            if isinstance(item, dict):
                yield item
    finally:
        stop.set()  # a cancelled run stops reading at the next chunk


class OpenAIAgent:
    def __init__(self, config: OpenAIConfig, spec: dict[str, Any]):
        self.config = config
        self.model = spec.get("model") or config.model
        self.max_turns = spec.get("max_turns") or DEFAULT_MAX_TURNS
        self.temperature = spec.get("temperature")

    async def __call__(self, run: Run) -> None:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": run.prompt_text},
            {"role": "user", "content": _user_content(run)},
        ]
        tools = [_tool_definition(tool) for tool in available_tools(run)]
        for turn in range(1, self.max_turns + 1):
            completion = await self._complete(run, messages, tools, message_id=f"m{turn}")
            messages.append(completion.as_message())
            if not completion.calls:
                return
            for index, call in completion.calls.items():
                call.id = call.id or f"call_{turn}_{index}"
                messages.append(await self._run_tool(run, call))
        message = f"The model was still calling tools after {self.max_turns} turns."
        raise AgentFailure("too_many_turns", message)

    def _request(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> tuple[str, dict, dict]:
        headers = {"Accept": "text/event-stream"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        body: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True}
        if tools:
            body["tools"] = tools
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return f"{self.config.base_url}/chat/completions", headers, body

    async def _complete(self, run: Run, messages: list, tools: list, message_id: str) -> Completion:
        completion = Completion()
        async for chunk in _stream_chunks(*self._request(messages, tools)):
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    completion.text += delta["content"]
                    await run.emit("message.delta", {"message_id": message_id, "text": delta["content"]})
                for fragment in delta.get("tool_calls") or []:
                    completion.merge_tool_call(fragment)
        if completion.text:
            await run.emit("message.stop", {"message_id": message_id})
        return completion

    async def _run_tool(self, run: Run, call: ToolCall) -> dict[str, Any]:
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = None
        if isinstance(arguments, dict):
            await run.emit("tool.call", {"call_id": call.id, "name": call.name, "arguments": arguments})
            outcome = await call_tool(run, call.name, arguments, call.id)
        else:
            await run.emit("tool.call", {"call_id": call.id, "name": call.name, "arguments": {}})
            message = f"The arguments are not a JSON object: {call.arguments[:200]!r}"
            outcome = ToolOutcome(False, error={"code": "invalid_arguments", "message": message})
        await run.emit("tool.result", outcome.event_data(call.id))
        content = outcome.result if outcome.ok else {"error": outcome.error}
        return {"role": "tool", "tool_call_id": call.id, "content": json.dumps(content)}
