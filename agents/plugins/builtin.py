"""The built-in plugin that needs nothing: ``echo`` answers its arguments back.

It does no I/O, so it measures the gateway alone (``bench/gateway.py``) and lets a demo or a test exercise the
whole path — token, whitelist, schema, audit, span, events — without reaching outside the process.
"""

from __future__ import annotations

from typing import Any

from agents.plugins.base import Call, Limits, Plugin


def _echo(arguments: dict[str, Any], call: Call) -> dict[str, Any]:
    return {"echo": arguments}


ECHO = Plugin(
    name="echo",
    description="Answers its arguments back unchanged (for trying the tool gateway).",
    schema={
        "type": "object",
        "properties": {"message": {"type": "string", "maxLength": 10_000}},
        "additionalProperties": True,
    },
    result_schema={"type": "object", "properties": {"echo": {"type": "object"}}, "required": ["echo"]},
    function=_echo,
    limits=Limits(timeout_s=5.0, max_result_bytes=64_000, calls_per_minute=6_000, max_concurrency=32),
)
