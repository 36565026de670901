"""Plugins the gateway's tests install (through ``registry.BUILTIN``): every failure, made to happen."""

from __future__ import annotations

import threading

from agents.plugins.base import Call, Limits, Plugin, PluginError

OBJECT = {"type": "object"}
released = threading.Event()  # what ``slow`` waits for, past its timeout


def _crash(arguments, call: Call):
    return 1 / 0


def _refuse(arguments, call: Call):
    raise PluginError("host_not_allowed", "No.", {"host": "example.org"})


def _slow(arguments, call: Call):
    released.wait(timeout=float(arguments.get("seconds", 5)))
    return {"slept": True}


def _huge(arguments, call: Call):
    return {"text": "x" * 5_000}


def _off_schema(arguments, call: Call):
    return {"count": "three"}


def _secretive(arguments, call: Call):
    return {"ok": True}


CRASH = Plugin("crash", "Raises.", OBJECT, OBJECT, _crash)
REFUSE = Plugin("refuse", "Refuses.", OBJECT, OBJECT, _refuse)
SLOW = Plugin("slow", "Sleeps.", OBJECT, OBJECT, _slow, Limits(timeout_s=0.3, max_concurrency=1))
HUGE = Plugin("huge", "Too big.", OBJECT, OBJECT, _huge, Limits(max_result_bytes=1_000))
OFF_SCHEMA = Plugin(
    "off_schema",
    "Answers off its schema.",
    OBJECT,
    {"type": "object", "properties": {"count": {"type": "integer"}}},
    _off_schema,
)
LIMITED = Plugin("limited", "3 a minute.", OBJECT, OBJECT, _secretive, Limits(calls_per_minute=3))
STRICT = Plugin(
    "strict",
    "Strict arguments.",
    {
        "type": "object",
        "properties": {
            "url": {"type": "string"},
            "options": {"type": "object", "properties": {"depth": {"type": "integer", "maximum": 3}}},
        },
        "required": ["url"],
        "additionalProperties": False,
    },
    OBJECT,
    _secretive,
    secret_arguments=frozenset({"pin"}),
)
BAD_SCHEMA = Plugin("bad_schema", "Its schema is not one.", {"type": "objekt"}, OBJECT, _secretive)
NOT_A_PLUGIN = {"name": "not_a_plugin"}
WRONG_NAME = Plugin("another_name", "Installed under the wrong name.", OBJECT, OBJECT, _secretive)
IMPORTED: list[str] = []


def make_lazy() -> Plugin:
    IMPORTED.append("lazy")
    return Plugin("lazy", "Made when loaded.", OBJECT, OBJECT, _secretive)


TEST_PLUGINS = {
    name: f"tests.gateway.plugins:{attribute}"
    for name, attribute in {
        "crash": "CRASH",
        "refuse": "REFUSE",
        "slow": "SLOW",
        "huge": "HUGE",
        "off_schema": "OFF_SCHEMA",
        "limited": "LIMITED",
        "strict": "STRICT",
        "bad_schema": "BAD_SCHEMA",
        "not_a_plugin": "NOT_A_PLUGIN",
        "wrong_name": "WRONG_NAME",
        "lazy": "make_lazy",
        "missing_module": "tests.gateway.no_such_module:X",
    }.items()
}
TEST_PLUGINS["missing_module"] = "tests.gateway.no_such_module:X"
