"""Runs in memory: each run is an asyncio task appending events to its own log; followers wait on a Condition.

Everything here runs on the event loop's one thread, so appends and state changes need no lock of their own;
the Condition only lets stream followers sleep until the log grows. Events are encoded to their SSE bytes
once, when appended, so a stream writes pre-built bytes and many followers cost no extra encoding.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from executor.http import ApiError, dump_json
from executor.protocol import (
    CANCELLED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    TERMINAL_STATES,
    WAITING_INPUT,
    Plugin,
    StartRequest,
    ToolGateway,
    trace_id_of,
)

logger = structlog.get_logger("executor.runs")

AgentFn = Callable[["Run"], Awaitable[None]]
PRUNE_EVERY_S = 30.0


class AgentFailure(Exception):
    """An agent gives up: the run finishes ``failed`` with this code and message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Event:
    seq: int
    type: str
    wire: bytes  # the whole SSE message; JSON never contains a raw newline, so one data line is safe


def encode_event(seq: int, event_type: str, data: dict[str, Any]) -> bytes:
    payload = dump_json({"seq": seq, "type": event_type, "data": data})
    return b"id: %d\ndata: %s\n\n" % (seq, payload)


def iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()


@dataclass
class Question:
    question: str
    options: list[str] | None
    answer: asyncio.Future[str]


@dataclass
class Run:
    run_id: str
    app: str
    agent: dict[str, Any]
    prompt_version: int
    prompt_text: str
    input: dict[str, Any]
    plugins: tuple[Plugin, ...]
    tool_gateway: ToolGateway | None
    traceparent: str | None
    settings: dict[str, Any] = field(default_factory=dict, repr=False)  # may hold secrets
    state: str = RUNNING
    error: dict[str, str] | None = None
    events: list[Event] = field(default_factory=list, repr=False)
    pending: dict[str, Question] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    last_activity: float = field(default_factory=time.time)
    finished_at: float | None = None
    forgotten: bool = False
    task: asyncio.Task[None] | None = None
    _grown: asyncio.Condition = field(default_factory=asyncio.Condition, init=False, repr=False)

    @classmethod
    def from_request(cls, request: StartRequest, traceparent: str | None) -> Run:
        return cls(
            run_id=request.run_id,
            app=request.app,
            agent=request.agent,
            prompt_version=request.prompt_version,
            prompt_text=request.prompt_text,
            input=request.input,
            plugins=request.plugins,
            tool_gateway=request.tool_gateway,
            traceparent=traceparent if trace_id_of(traceparent) else None,
            settings=request.settings,
        )

    @property
    def last_seq(self) -> int:
        return len(self.events)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def agent_label(self) -> str:
        detail = self.agent.get("playbook") or self.agent.get("model") or "default"
        return f"{self.agent['kind']}:{detail}"

    def _append(self, event_type: str, data: dict[str, Any]) -> int:
        seq = len(self.events) + 1
        self.events.append(Event(seq, event_type, encode_event(seq, event_type, data)))
        self.last_activity = time.time()
        self._grown.notify_all()
        return seq

    async def emit(self, event_type: str, data: dict[str, Any]) -> int:
        async with self._grown:
            return self._append(event_type, data)

    async def finish(self, status: str, error: dict[str, str] | None = None) -> None:
        for question in self.pending.values():
            question.answer.cancel()
        self.pending.clear()
        async with self._grown:
            # The state turns terminal together with the terminal event's append, never before it: a
            # follower that sees a terminal run with nothing left to send may end its stream.
            self._append("run.finished", {"status": status, **({"error": error} if error else {})})
            self.state, self.error, self.finished_at = status, error, time.time()

    def events_after(self, seq: int, limit: int) -> list[Event]:
        return self.events[seq : seq + limit]  # seq N is at index N-1: contiguous from 1

    async def wait_beyond(self, seq: int, timeout: float) -> bool:
        """Wait until the log holds an event after ``seq`` (or the run was forgotten); False on timeout."""
        async with self._grown:
            try:
                async with asyncio.timeout(timeout):
                    await self._grown.wait_for(lambda: len(self.events) > seq or self.forgotten)
            except TimeoutError:
                return False
        return True

    async def ask(self, question: str, options: list[str] | None = None) -> str:
        request_id = f"{self.run_id}:q{len(self.pending) + len(self.answers) + 1}"
        self.pending[request_id] = Question(question, options, asyncio.get_running_loop().create_future())
        self.state = WAITING_INPUT
        data: dict[str, Any] = {"request_id": request_id, "question": question}
        if options:
            data["options"] = options
        await self.emit("human_loop.request", data)
        return await self.pending[request_id].answer

    async def answer(self, request_id: str, answer: str) -> bool:
        """Deliver a human's answer; True if applied now, False if this exact answer was applied before."""
        if request_id in self.answers:
            if self.answers[request_id] != answer:
                raise ApiError(409, "answer_conflict", "This request was already answered differently.")
            return False
        if self.terminal:
            raise ApiError(409, "run_finished", f"The run is already {self.state}.")
        question = self.pending.get(request_id)
        if question is None:
            raise ApiError(404, "request_not_found", "This run has no such human-input request.")
        self.answers[request_id] = answer
        del self.pending[request_id]
        if not self.pending:
            self.state = RUNNING
        await self.emit("human_loop.reply", {"request_id": request_id, "answer": answer})
        question.answer.set_result(answer)
        return True

    async def cancel(self, grace_s: float = 5.0) -> None:
        if self.terminal or self.task is None:
            return
        self.task.cancel()
        await asyncio.wait({self.task}, timeout=grace_s)

    async def forget(self) -> None:
        """Drop the run as a restart would: no terminal event; its followers' streams are cut."""
        self.forgotten = True
        if self.task is not None and not self.task.done():
            self.task.cancel()
        async with self._grown:
            self._grown.notify_all()

    def status(self) -> dict[str, Any]:
        pending = [
            {"request_id": request_id, "question": q.question, "options": q.options}
            for request_id, q in self.pending.items()
        ]
        return {
            "run_id": self.run_id,
            "app": self.app,
            "agent": self.agent,
            "state": self.state,
            "last_seq": self.last_seq,
            "error": self.error,
            "pending_requests": pending,
            # What settings arrived, without their values (some are secrets): the names, and a digest a
            # caller that knows the values can compare.
            "settings_keys": sorted(self.settings),
            "settings_sha256": settings_digest(self.settings),
            "created_at": iso(self.created_at),
            "finished_at": iso(self.finished_at),
        }


def settings_digest(settings: dict[str, Any]) -> str:
    """SHA-256 of the settings as canonical JSON (keys sorted, no spaces, UTF-8)."""
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def drive(run: Run, agent: AgentFn) -> None:
    """The run's task: started, the agent's events, then exactly one ``run.finished`` (unless forgotten)."""
    structlog.contextvars.bind_contextvars(run_id=run.run_id, trace_id=trace_id_of(run.traceparent))
    await run.emit("run.started", {"app": run.app, "agent": run.agent, "prompt_version": run.prompt_version})
    try:
        await agent(run)
    except asyncio.CancelledError:
        if not run.forgotten:
            await run.finish(CANCELLED)
        return
    except AgentFailure as failure:
        await run.finish(FAILED, {"code": failure.code, "message": failure.message})
    except Exception as exc:
        logger.exception("agent_crashed")
        await run.finish(FAILED, {"code": "agent_crashed", "message": f"{type(exc).__name__}: {exc}"[:500]})
    else:
        await run.finish(SUCCEEDED)
    logger.info("run_finished", state=run.state, events=run.last_seq)


class RunRegistry:
    def __init__(self, *, retention_s: float):
        self.retention_s = retention_s
        self._runs: dict[str, Run] = {}
        self._pruned_at = time.monotonic()

    def start(self, request: StartRequest, agent: AgentFn, traceparent: str | None) -> tuple[Run, bool]:
        """The run with this id, started now if new; a repeated start changes nothing (idempotent)."""
        self._prune()
        existing = self._runs.get(request.run_id)
        if existing is not None:
            return existing, False
        run = self._runs[request.run_id] = Run.from_request(request, traceparent)
        run.task = asyncio.create_task(drive(run, agent), name=f"run-{run.run_id}")
        logger.info("run_started", run_id=run.run_id, app=run.app, agent=run.agent_label)
        return run, True

    def get(self, run_id: str) -> Run:
        run = self._runs.get(run_id)
        if run is None:
            raise ApiError(404, "run_not_found", "This executor has no run with this id.")
        return run

    def counts(self) -> dict[str, int]:
        active = sum(1 for run in self._runs.values() if not run.terminal)
        return {"active": active, "total": len(self._runs)}

    async def forget_all(self) -> int:
        runs, self._runs = list(self._runs.values()), {}
        for run in runs:
            await run.forget()
        return len(runs)

    def _prune(self) -> None:
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        horizon = time.time() - self.retention_s
        expired = [rid for rid, run in self._runs.items() if run.finished_at and run.finished_at < horizon]
        for run_id in expired:
            del self._runs[run_id]

    def agents(self) -> list[dict[str, Any]]:
        groups: dict[tuple[str, str], list[Run]] = {}
        for run in self._runs.values():
            groups.setdefault((run.app, run.agent_label), []).append(run)
        return [_agent_entry(app, label, runs) for (app, label), runs in sorted(groups.items())]


def _agent_entry(app: str, label: str, runs: list[Run]) -> dict[str, Any]:
    running = sum(1 for run in runs if run.state == RUNNING)
    waiting = sum(1 for run in runs if run.state == WAITING_INPUT)
    latest = max(runs, key=lambda run: run.created_at)
    if running:
        state, detail = "busy", f"{running} running, {waiting} waiting for input"
    elif waiting:
        state, detail = "waiting_input", f"{waiting} waiting for input"
    elif latest.state == FAILED:
        state, detail = "error", f"last run failed: {(latest.error or {}).get('message', '')}"[:300]
    else:
        state, detail = "idle", f"{len(runs)} finished run(s)"
    return {
        "agent_id": f"{app}/{label}",
        "app": app,
        "state": state,
        "detail": detail,
        "last_activity": iso(max(run.last_activity for run in runs)),
    }
