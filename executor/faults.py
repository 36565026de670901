"""Fault injection for tests: fail, slow down or cut what the executor serves, on an admin's request.

Set with ``POST /v1/admin/faults`` (admin token) or the ``EXECUTOR_FAULTS`` environment variable, both taking
the same JSON object; ``DELETE /v1/admin/faults`` clears everything. Admin calls are never faulted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from executor.protocol import invalid


@dataclass
class FailRule:
    remaining: int
    status: int
    path_prefix: str
    method: str | None
    retry_after: int | None


@dataclass
class LatencyRule:
    seconds: float
    path_prefix: str
    remaining: int | None  # None: until cleared


@dataclass
class CutRule:
    after_events: int
    remaining: int


def _int(spec: dict[str, Any], name: str, default: int, low: int, high: int, where: str) -> int:
    value = spec.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise invalid({f"{where}.{name}": f"an integer from {low} to {high}"})
    return value


def _optional_int(spec: dict[str, Any], name: str, low: int, high: int, where: str) -> int | None:
    return None if spec.get(name) is None else _int(spec, name, low, low, high, where)


def _prefix(spec: dict[str, Any], where: str) -> str:
    prefix = spec.get("path_prefix", "/")
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise invalid({f"{where}.path_prefix": "a path starting with /"})
    return prefix


def _object(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    spec = body.get(name)
    if spec is not None and not isinstance(spec, dict):
        raise invalid({name: "an object"})
    return spec


class Faults:
    def __init__(self) -> None:
        self.fail: FailRule | None = None
        self.latency: LatencyRule | None = None
        self.cut: CutRule | None = None

    def clear(self) -> None:
        self.fail = self.latency = self.cut = None

    def configure(self, body: dict[str, Any]) -> None:
        """Replace the rules named in ``body`` (``fail``, ``latency``, ``cut_stream``); null clears one."""
        rules = {name: _object(body, name) for name in ("fail", "latency", "cut_stream") if name in body}
        if "fail" in rules:
            self.fail = self._fail(rules["fail"])
        if "latency" in rules:
            self.latency = self._latency(rules["latency"])
        if "cut_stream" in rules:
            self.cut = self._cut(rules["cut_stream"])

    @staticmethod
    def _fail(spec: dict[str, Any] | None) -> FailRule | None:
        if spec is None:
            return None
        method = spec.get("method")
        if method is not None and method not in {"GET", "POST"}:
            raise invalid({"fail.method": "GET, POST or null"})
        return FailRule(
            remaining=_int(spec, "count", 1, 1, 1_000_000, "fail"),
            status=_int(spec, "status", 503, 400, 599, "fail"),
            path_prefix=_prefix(spec, "fail"),
            method=method,
            retry_after=_optional_int(spec, "retry_after", 0, 3600, "fail"),
        )

    @staticmethod
    def _latency(spec: dict[str, Any] | None) -> LatencyRule | None:
        if spec is None:
            return None
        seconds = spec.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds <= 600:
            raise invalid({"latency.seconds": "a number of seconds from 0 to 600"})
        count = _optional_int(spec, "count", 1, 1_000_000, "latency")
        return LatencyRule(float(seconds), _prefix(spec, "latency"), count)

    @staticmethod
    def _cut(spec: dict[str, Any] | None) -> CutRule | None:
        if spec is None:
            return None
        if "after_events" not in spec:
            raise invalid({"cut_stream.after_events": "required: an integer from 0"})
        after = _int(spec, "after_events", 0, 0, 10_000_000, "cut_stream")
        return CutRule(after, _int(spec, "count", 1, 1, 1_000_000, "cut_stream"))

    def take_failure(self, method: str, path: str) -> FailRule | None:
        rule = self.fail
        if rule is None or not path.startswith(rule.path_prefix) or rule.method not in {None, method}:
            return None
        rule.remaining -= 1
        if rule.remaining <= 0:
            self.fail = None
        return rule

    def take_latency(self, path: str) -> float:
        rule = self.latency
        if rule is None or not path.startswith(rule.path_prefix):
            return 0.0
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                self.latency = None
        return rule.seconds

    def take_cut(self) -> int | None:
        rule = self.cut
        if rule is None:
            return None
        rule.remaining -= 1
        if rule.remaining <= 0:
            self.cut = None
        return rule.after_events

    def describe(self) -> dict[str, Any]:
        return {
            "fail": asdict(self.fail) if self.fail else None,
            "latency": asdict(self.latency) if self.latency else None,
            "cut_stream": asdict(self.cut) if self.cut else None,
        }
