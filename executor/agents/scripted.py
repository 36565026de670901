"""Scripted agents: deterministic playbooks for the demo, tests and benchmarks.

Each playbook is a coroutine taking the run; ``runs.drive`` wraps it with ``run.started`` and
``run.finished``. Playbook knobs come from the run's ``input`` (documented in docs/executor-protocol.md);
a malformed knob fails the run with ``invalid_input`` — input is the agent's business, not the protocol's.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from executor.runs import AgentFailure, Run
from executor.tools import call_tool, uses_gateway

URL_IN_TEXT = re.compile(r"https?://\S+")
SQL_IN_TEXT = re.compile(
    r"^\s*(select|with|values|table|insert|update|delete|merge|drop|create|alter|truncate|copy|set|grant)\b",
    re.I,
)
FLOOD_YIELD_EVERY = 256  # let followers send between bursts; batching keeps the flood cheap
LONG_TICK_S = 0.1


def _number(run: Run, name: str, default: float | None, low: float, high: float) -> float | None:
    value = run.input.get(name, default)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise AgentFailure("invalid_input", f"input.{name} must be a number from {low} to {high}")
    return float(value)


def _request_text(run: Run) -> str:
    message = run.input.get("message")
    return message if isinstance(message, str) and message.strip() else run.prompt_text or "(no request)"


async def _say(run: Run, message_id: str, text: str, delay_s: float = 0.0) -> None:
    """Stream ``text`` as a few deltas (about three words each), then stop the message."""
    words = text.split(" ")
    for start in range(0, len(words), 3):
        piece = " ".join(words[start : start + 3]) + (" " if start + 3 < len(words) else "")
        await run.emit("message.delta", {"message_id": message_id, "text": piece})
        await asyncio.sleep(delay_s)
    await run.emit("message.stop", {"message_id": message_id})


class TodoList:
    def __init__(self, run: Run, titles: list[str]):
        self.run = run
        self.todos = [
            {"id": f"t{n}", "title": title, "status": "pending"} for n, title in enumerate(titles, 1)
        ]

    async def publish(self) -> None:
        await self.run.emit("todo.update", {"todos": [dict(todo) for todo in self.todos]})

    async def start(self, index: int) -> None:
        """Mark every earlier item done and item ``index`` in progress, in one update."""
        for n, todo in enumerate(self.todos):
            if n < index:
                todo["status"] = "done"
            elif n == index:
                todo["status"] = "in_progress"
        await self.publish()

    async def finish(self) -> None:
        for todo in self.todos:
            todo["status"] = "done"
        await self.publish()


def _demo_tool(run: Run) -> tuple[str, dict[str, Any]]:
    """The run's first plugin (or ``input.tool``) through the gateway when it has one, else ``word_count``."""
    if uses_gateway(run):
        names = [plugin.name for plugin in run.plugins]
        wanted = run.input.get("tool")
        arguments = run.input.get("tool_arguments")
        return (wanted if wanted in names else names[0]), (arguments if isinstance(arguments, dict) else {})
    return "word_count", {"text": _request_text(run)}


async def demo(run: Run) -> None:
    delay = (_number(run, "delay_ms", 20, 0, 10_000) or 0) / 1000
    todos = TodoList(run, ["Read the request", "Use a tool", "Ask a human to confirm", "Write the answer"])
    await todos.publish()
    await todos.start(0)
    await _say(run, "m1", f"I will work on: {_request_text(run)}", delay)
    await todos.start(1)
    name, arguments = _demo_tool(run)
    await run.emit("tool.call", {"call_id": "call_1", "name": name, "arguments": arguments})
    outcome = await call_tool(run, name, arguments, "call_1")
    await run.emit("tool.result", outcome.event_data("call_1"))
    await todos.start(2)
    answer = await run.ask("The tool has answered. Shall I write the answer?", ["approve", "reject"])
    await todos.start(3)
    verdict = "You approved, so here it is." if answer == "approve" else f"You said {answer!r}; noted."
    result = outcome.result if outcome.ok else outcome.error
    await _say(run, "m2", f"{verdict} The {name} tool returned {json.dumps(result)}.", delay)
    await todos.finish()


def _tool_calls(run: Run) -> list[tuple[str, dict[str, Any]]]:
    """``input.calls`` ([{tool, arguments}], at most 20), else one ``http_fetch`` of ``input.url`` and one
    ``db_query`` of ``input.sql`` — each only where the input gives it."""
    calls = run.input.get("calls")
    if calls is not None:
        valid = isinstance(calls, list) and len(calls) <= 20
        valid = valid and all(
            isinstance(c, dict)
            and isinstance(c.get("tool"), str)
            and isinstance(c.get("arguments", {}), dict)
            for c in calls
        )
        if not valid:
            raise AgentFailure("invalid_input", "input.calls must be a list of at most 20 {tool, arguments}")
        return [(call["tool"], call.get("arguments", {})) for call in calls]
    planned: list[tuple[str, dict[str, Any]]] = []
    if isinstance(run.input.get("url"), str):
        planned.append(("http_fetch", {"url": run.input["url"]}))
    if isinstance(run.input.get("sql"), str):
        planned.append(("db_query", {"sql": run.input["sql"]}))
    if planned or not isinstance(run.input.get("message"), str):
        return planned
    # A person typed a message (the portal): its URLs are fetched; SQL is sent to db_query (which refuses
    # anything but one read-only query: the demo shows that too).
    message = run.input["message"].strip()
    planned = [("http_fetch", {"url": url.rstrip(".,;)")}) for url in URL_IN_TEXT.findall(message)[:3]]
    if SQL_IN_TEXT.match(message):
        planned.append(("db_query", {"sql": message}))
    return planned


def _summary(name: str, outcome: Any) -> str:
    if not outcome.ok:
        error = outcome.error or {}
        return f"{name} failed: {error.get('code', 'error')} ({error.get('message', '')})."
    result = outcome.result
    if name == "http_fetch" and isinstance(result, dict):
        return f"http_fetch got HTTP {result.get('status')} ({result.get('size', 0)} bytes)."
    if name == "db_query" and isinstance(result, dict):
        return f"db_query returned {result.get('row_count', 0)} row(s)."
    return f"{name} returned {json.dumps(result)[:200]}."


async def tools(run: Run) -> None:
    """Calls plugins through the tool gateway, one after another, and reports what each returned."""
    delay = (_number(run, "delay_ms", 0, 0, 10_000) or 0) / 1000
    planned = _tool_calls(run)
    todos = TodoList(run, [f"Call {name}" for name, _ in planned] + ["Write the answer"])
    await todos.publish()
    lines = []
    for index, (name, arguments) in enumerate(planned):
        await todos.start(index)
        call_id = f"call_{index + 1}"
        await run.emit("tool.call", {"call_id": call_id, "name": name, "arguments": arguments})
        outcome = await call_tool(run, name, arguments, call_id)
        await run.emit("tool.result", outcome.event_data(call_id))
        lines.append(_summary(name, outcome))
    await todos.start(len(planned))
    nothing = "Give me a URL to fetch or a SELECT to run, and I will call the tool for it."
    await _say(run, "m1", " ".join(lines) or nothing, delay)
    await todos.finish()


async def instant(run: Run) -> None:
    await _say(run, "m1", "Hello from the instant playbook.")


async def flood(run: Run) -> None:
    count = int(_number(run, "count", 1000, 1, 1_000_000) or 0)
    for n in range(1, count + 1):
        await run.emit("message.delta", {"message_id": "m1", "text": f"{n} "})
        if n % FLOOD_YIELD_EVERY == 0:
            await asyncio.sleep(0)
    await run.emit("message.stop", {"message_id": "m1"})


async def fail(run: Run) -> None:
    todos = TodoList(run, ["Try something that cannot work"])
    await todos.start(0)
    await _say(run, "m1", "This is going to fail.")
    raise AgentFailure("playbook_failed", "The fail playbook always fails.")


async def long(run: Run) -> None:
    seconds = _number(run, "seconds", None, 0, 86_400)
    deadline = None if seconds is None else time.monotonic() + seconds
    tick = 0
    while deadline is None or time.monotonic() < deadline:
        tick += 1
        await run.emit("message.delta", {"message_id": "m1", "text": f"tick {tick} "})
        await asyncio.sleep(LONG_TICK_S)
    await run.emit("message.stop", {"message_id": "m1"})


PLAYBOOKS: dict[str, Callable[[Run], Awaitable[None]]] = {
    "demo": demo,
    "instant": instant,
    "flood": flood,
    "fail": fail,
    "long": long,
    "tools": tools,
}
