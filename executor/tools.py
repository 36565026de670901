"""Tools an agent may call: the run's plugins through the control plane's tool gateway, else built-ins.

A run that names a tool gateway and plugins gets exactly those plugins, called as
``POST {tool_gateway.url}/{plugin}`` with the run-scoped Bearer token and the JSON arguments. Any other run
gets the executor's small built-in tools, so demos and tests work with no control plane at all.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

if TYPE_CHECKING:
    from executor.protocol import ToolGateway
    from executor.runs import Run

GATEWAY_TIMEOUT_S = (5.0, 60.0)  # (connect, read): a plugin such as http_fetch may itself be slow


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class ToolOutcome:
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None

    def event_data(self, call_id: str) -> dict[str, Any]:
        if self.ok:
            return {"call_id": call_id, "ok": True, "result": self.result}
        return {"call_id": call_id, "ok": False, "error": self.error}


def _clock(arguments: dict[str, Any]) -> Any:
    return {"utc": datetime.now(UTC).isoformat(timespec="seconds")}


def _word_count(arguments: dict[str, Any]) -> Any:
    text = arguments.get("text")
    if not isinstance(text, str):
        raise ValueError('"text" must be a string')
    return {"words": len(re.findall(r"\S+", text))}


BUILTINS: dict[str, tuple[ToolSpec, Callable[[dict[str, Any]], Any]]] = {
    "clock": (
        ToolSpec("clock", "The current UTC time.", {"type": "object", "properties": {}}),
        _clock,
    ),
    "word_count": (
        ToolSpec(
            "word_count",
            "Count the words of a text.",
            {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        ),
        _word_count,
    ),
}


def uses_gateway(run: Run) -> bool:
    return run.tool_gateway is not None and bool(run.plugins)


def available_tools(run: Run) -> list[ToolSpec]:
    if uses_gateway(run):
        return [ToolSpec(p.name, p.description or f"The {p.name} plugin.", p.schema) for p in run.plugins]
    return [spec for spec, _ in BUILTINS.values()]


async def call_tool(run: Run, name: str, arguments: dict[str, Any], call_id: str = "") -> ToolOutcome:
    """Run the tool; ``call_id`` is the id of the ``tool.call`` event the agent emitted for it, which tells
    the gateway not to emit its own."""
    if name not in {tool.name for tool in available_tools(run)}:
        return ToolOutcome(False, error={"code": "unknown_tool", "message": f"No tool named {name!r}."})
    gateway = run.tool_gateway if uses_gateway(run) else None
    if gateway is not None:
        return await asyncio.to_thread(_call_gateway, gateway, run.traceparent, name, arguments, call_id)
    try:
        return ToolOutcome(True, result=BUILTINS[name][1](arguments))
    except ValueError as exc:
        return ToolOutcome(False, error={"code": "invalid_arguments", "message": str(exc)})


def _call_gateway(
    gateway: ToolGateway, traceparent: str | None, name: str, arguments: dict[str, Any], call_id: str
) -> ToolOutcome:
    headers = {"Authorization": f"Bearer {gateway.token}"}
    if call_id:
        headers["Tool-Call-Id"] = call_id
    if traceparent:
        # Forwarded unchanged: this executor records no spans of its own, so the gateway's span hangs
        # under the control plane's span for the call that started (or resumed) this run.
        headers["traceparent"] = traceparent
    try:
        response = requests.post(
            f"{gateway.url}/{quote(name)}", json=arguments, headers=headers, timeout=GATEWAY_TIMEOUT_S
        )
    except requests.RequestException as exc:
        message = f"{type(exc).__name__}: {exc}"[:300]
        return ToolOutcome(False, error={"code": "gateway_unreachable", "message": message})
    return _gateway_outcome(response)


def _gateway_outcome(response: requests.Response) -> ToolOutcome:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:2000]
    if response.ok:
        return ToolOutcome(True, result=body.get("result") if isinstance(body, dict) else body)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return ToolOutcome(False, error={**body["error"], "status": response.status_code})
    message = str(body)[:300]
    return ToolOutcome(False, error={"code": f"http_{response.status_code}", "message": message})
