"""Protocol v1's vocabulary and the validation of request bodies (docs/executor-protocol.md).

Unknown fields are ignored, so a newer control plane can send more than this executor understands.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from executor.http import ApiError

PROTOCOL_VERSION = 1

RUNNING = "running"
WAITING_INPUT = "waiting_input"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
TERMINAL_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED})

EVENT_TYPES = (
    "run.started",
    "run.finished",
    "message.delta",
    "message.stop",
    "tool.call",
    "tool.result",
    "todo.update",
    "human_loop.request",
    "human_loop.reply",
)

# Run ids travel in URL paths; the control plane sends UUIDs.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
PLUGIN_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
TRACEPARENT_PATTERN = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
DEFAULT_AGENT: dict[str, Any] = {"kind": "scripted", "playbook": "demo"}


@dataclass(frozen=True)
class Plugin:
    name: str
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True)
class ToolGateway:
    url: str
    token: str


@dataclass(frozen=True)
class StartRequest:
    run_id: str
    app: str
    agent: dict[str, Any]
    prompt_version: int
    prompt_text: str
    input: dict[str, Any]
    plugins: tuple[Plugin, ...]
    tool_gateway: ToolGateway | None
    settings: dict[str, Any] = field(default_factory=dict, repr=False)  # may hold secrets: never logged


def invalid(errors: dict[str, str]) -> ApiError:
    return ApiError(400, "invalid", "Invalid input.", detail=errors)


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a well-formed W3C ``traceparent``; a malformed one is ignored, as the spec says."""
    match = TRACEPARENT_PATTERN.fullmatch(traceparent or "")
    return match.group(1) if match and match.group(1) != "0" * 32 else None


def _string(body: dict[str, Any], name: str, errors: dict[str, str], *, max_length: int = 200) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        errors[name] = "required: a non-empty string"
        return ""
    if len(value) > max_length:
        errors[name] = f"at most {max_length} characters"
    return value


def _run_id(body: dict[str, Any], errors: dict[str, str]) -> str:
    value = _string(body, "run_id", errors)
    if value and not RUN_ID_PATTERN.fullmatch(value):
        errors["run_id"] = "1-128 characters of A-Z a-z 0-9 . _ : -"
    return value


def _prompt(value: Any, errors: dict[str, str]) -> tuple[int, str]:
    if not isinstance(value, dict):
        errors["prompt"] = "required: an object {version, text}"
        return 0, ""
    version, text = value.get("version"), value.get("text")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        errors["prompt.version"] = "required: a non-negative integer"
    if not isinstance(text, str):
        errors["prompt.text"] = "required: a string"
    return (version if isinstance(version, int) else 0), (text if isinstance(text, str) else "")


def _plugin(index: int, value: Any, errors: dict[str, str]) -> Plugin | None:
    where = f"plugins[{index}]"
    if not isinstance(value, dict):
        errors[where] = "an object {name, schema}"
        return None
    name, schema, description = value.get("name"), value.get("schema", {}), value.get("description", "")
    problems: dict[str, str] = {}
    if not isinstance(name, str) or not PLUGIN_NAME_PATTERN.fullmatch(name):
        problems[f"{where}.name"] = "a lowercase identifier (a-z, 0-9, _)"
    if not isinstance(schema, dict):
        problems[f"{where}.schema"] = "a JSON Schema object"
    if not isinstance(description, str):
        problems[f"{where}.description"] = "a string"
    errors.update(problems)
    return None if problems else Plugin(str(name), dict(schema), str(description))


def _plugins(value: Any, errors: dict[str, str]) -> tuple[Plugin, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        errors["plugins"] = "a list of {name, schema}"
        return ()
    plugins = [_plugin(index, item, errors) for index, item in enumerate(value)]
    return tuple(plugin for plugin in plugins if plugin is not None)


def _tool_gateway(value: Any, errors: dict[str, str]) -> ToolGateway | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        errors["tool_gateway"] = "an object {url, token} or null"
        return None
    url, token = value.get("url"), value.get("token")
    if not isinstance(url, str) or urlsplit(url).scheme not in {"http", "https"} or not urlsplit(url).netloc:
        errors["tool_gateway.url"] = "required: an http(s) URL"
    if not isinstance(token, str) or not token:
        errors["tool_gateway.token"] = "required: a non-empty string"
    if "tool_gateway.url" in errors or "tool_gateway.token" in errors:
        return None
    return ToolGateway(str(url).rstrip("/"), str(token))


def _agent(value: Any, check_agent: Callable[[dict[str, Any]], str | None], errors: dict[str, str]) -> dict:
    if value is None:
        return dict(DEFAULT_AGENT)
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
        errors["agent"] = 'an object with a "kind", e.g. {"kind": "scripted", "playbook": "demo"}'
        return {}
    problem = check_agent(value)
    if problem:
        errors["agent"] = problem
    return value


def parse_start(body: dict[str, Any], check_agent: Callable[[dict[str, Any]], str | None]) -> StartRequest:
    """Validate a start body; ``check_agent`` returns what is wrong with the agent spec, or None."""
    errors: dict[str, str] = {}
    run_id = _run_id(body, errors)
    app = _string(body, "app", errors)
    agent = _agent(body.get("agent"), check_agent, errors)
    version, text = _prompt(body.get("prompt"), errors)
    run_input = body.get("input")
    if not isinstance(run_input, dict):
        errors["input"] = "required: an object"
    plugins = _plugins(body.get("plugins"), errors)
    gateway = _tool_gateway(body.get("tool_gateway"), errors)
    settings = body.get("settings") or {}
    if not isinstance(settings, dict):
        errors["settings"] = "an object (the app's effective settings)"
    if errors:
        raise invalid(errors)
    assert isinstance(run_input, dict)
    assert isinstance(settings, dict)
    return StartRequest(run_id, app, agent, version, text, run_input, plugins, gateway, settings)


@dataclass(frozen=True)
class InputRequest:
    request_id: str
    answer: str


def parse_input(body: dict[str, Any]) -> InputRequest:
    errors: dict[str, str] = {}
    request_id = _string(body, "request_id", errors)
    answer = body.get("answer")
    if not isinstance(answer, str):
        errors["answer"] = "required: a string"
    if errors:
        raise invalid(errors)
    return InputRequest(request_id, str(answer))


AFTER_PATTERN = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() also takes "١٢"


def parse_after(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    if not AFTER_PATTERN.fullmatch(raw):
        raise invalid({"after": "a non-negative integer of at most 18 ASCII digits"})
    return int(raw)
