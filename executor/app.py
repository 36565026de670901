"""The executor's HTTP surface (protocol v1) as a raw ASGI application: routing, auth, faults, handlers.

Every answer that is not an event stream is JSON; every failure is ``{"error": {code, message, detail}}``
with a 4xx status for anything the caller got wrong, never a 500.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from executor.agents import AgentCatalog
from executor.config import Config
from executor.faults import Faults
from executor.http import (
    ApiError,
    ClientGone,
    Receive,
    Request,
    Scope,
    Send,
    read_request,
    send_error,
    send_json,
)
from executor.protocol import PROTOCOL_VERSION, invalid, parse_after, parse_input, parse_start, trace_id_of
from executor.runs import RunRegistry
from executor.streaming import stream_events

logger = structlog.get_logger("executor.app")

Reply = tuple[int, Any]
Handler = Callable[..., Awaitable[Reply]]
RUN = r"/v1/runs/(?P<run_id>[^/]+)"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: str
    admin: bool = False


ROUTES = [
    Route("GET", re.compile(r"/v1/health"), "health"),
    Route("GET", re.compile(r"/v1/agents"), "agents"),
    Route("POST", re.compile(r"/v1/runs"), "start_run"),
    Route("GET", re.compile(RUN), "get_run"),
    Route("GET", re.compile(RUN + r"/events"), "events"),
    Route("POST", re.compile(RUN + r"/input"), "send_input"),
    Route("POST", re.compile(RUN + r"/cancel"), "cancel_run"),
    Route("GET", re.compile(r"/v1/admin/faults"), "get_faults", admin=True),
    Route("POST", re.compile(r"/v1/admin/faults"), "set_faults", admin=True),
    Route("DELETE", re.compile(r"/v1/admin/faults"), "clear_faults", admin=True),
]


class _TrackedSend:
    """Remembers whether the response has started, so a late failure does not send a second start."""

    def __init__(self, send: Send):
        self._send = send
        self.started = False

    async def __call__(self, message: Any) -> None:
        self.started = True
        await self._send(message)


def _match(method: str, path: str) -> tuple[Route | None, dict[str, str], set[str]]:
    allowed: set[str] = set()
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match and route.method == method:
            return route, match.groupdict(), allowed
        if match:
            allowed.add(route.method)
    return None, {}, allowed


class ExecutorApp:
    def __init__(self, config: Config):
        self.config = config
        self.registry = RunRegistry(retention_s=config.retention_s)
        self.catalog = AgentCatalog(config.openai)
        self.faults = Faults()
        if config.faults:
            self.faults.configure(config.faults)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: set[asyncio.Task[int]] = set()

    def begin_shutdown(self) -> None:
        """From the server's signal handler: forget every run now. Runs live in memory and die with the
        process anyway; forgetting them ends their open streams, so the shutdown does not wait on them."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._forget_all_soon)

    def _forget_all_soon(self) -> None:
        task = asyncio.ensure_future(self.registry.forget_all())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, _TrackedSend(send))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.registry.forget_all()  # in-memory runs end with the process
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: _TrackedSend) -> None:
        try:
            request = await read_request(scope, receive)
            await self._dispatch(request, receive, send)
        except ClientGone:
            return
        except ApiError as error:
            if not send.started:
                await send_error(send, error)
        except Exception:
            logger.exception("executor_error", method=scope["method"], path=scope["path"])
            if not send.started:
                await send_error(send, ApiError(500, "server_error", "Internal server error."))

    async def _dispatch(self, request: Request, receive: Receive, send: Send) -> None:
        route, params, allowed = _match(request.method, request.path)
        admin = request.path.startswith("/v1/admin/")
        if admin and not self.config.admin_token:
            raise ApiError(404, "not_found", "The admin API is off: EXECUTOR_ADMIN_TOKEN is not set.")
        self._authenticate(request, admin=admin)
        if route is None and allowed:
            allow = [("Allow", ", ".join(sorted(allowed)))]
            raise ApiError(405, "method_not_allowed", f"Method {request.method} not allowed.", headers=allow)
        if route is None:
            raise ApiError(404, "not_found", "No such endpoint.")
        if not route.admin:
            await self._inject_faults(request)
        if route.handler == "events":
            await self._events(request, receive, send, **params)
            return
        handler: Handler = getattr(self, f"_{route.handler}")
        status, payload = await handler(request, **params)
        await send_json(send, status, payload)

    def _authenticate(self, request: Request, *, admin: bool) -> None:
        expected = self.config.admin_token if admin else self.config.token
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        # An empty expected token would match an empty Bearer value: refuse it rather than trust the caller.
        matches = hmac.compare_digest(token.strip().encode(), expected.encode())
        if not expected or scheme.lower() != "bearer" or not matches:
            challenge = [("WWW-Authenticate", 'Bearer realm="executor"')]
            raise ApiError(401, "not_authenticated", "A valid Bearer token is required.", headers=challenge)

    async def _inject_faults(self, request: Request) -> None:
        delay = self.faults.take_latency(request.path)
        if delay:
            await asyncio.sleep(delay)
        rule = self.faults.take_failure(request.method, request.path)
        if rule is not None:
            headers = [("Retry-After", str(rule.retry_after))] if rule.retry_after is not None else []
            message = f"Injected fault: HTTP {rule.status}."
            raise ApiError(rule.status, "injected_fault", message, headers=headers)

    # --- protocol v1 ---------------------------------------------------------------------------------

    async def _health(self, request: Request) -> Reply:
        return 200, {"status": "ok", "protocol": PROTOCOL_VERSION, "runs": self.registry.counts()}

    async def _agents(self, request: Request) -> Reply:
        return 200, self.registry.agents()

    async def _start_run(self, request: Request) -> Reply:
        start = parse_start(request.json_object(), self.catalog.problem)
        agent = self.catalog.build(start.agent)
        run, created = self.registry.start(start, agent, request.headers.get("traceparent"))
        body = {"run_id": run.run_id, "state": run.state, "last_seq": run.last_seq, "created": created}
        return (201 if created else 200), body

    async def _get_run(self, request: Request, run_id: str) -> Reply:
        return 200, self.registry.get(run_id).status()

    async def _send_input(self, request: Request, run_id: str) -> Reply:
        run = self.registry.get(run_id)
        answer = parse_input(request.json_object())
        traceparent = request.headers.get("traceparent")
        if trace_id_of(traceparent):
            run.traceparent = traceparent  # tool calls after the answer belong to the resuming attempt
        applied = await run.answer(answer.request_id, answer.answer)
        body = {"run_id": run_id, "request_id": answer.request_id, "applied": applied, "state": run.state}
        return 200, body

    async def _cancel_run(self, request: Request, run_id: str) -> Reply:
        run = self.registry.get(run_id)
        await run.cancel()
        return 200, {"run_id": run_id, "state": run.state, "last_seq": run.last_seq}

    async def _events(self, request: Request, receive: Receive, send: Send, run_id: str) -> None:
        run = self.registry.get(run_id)
        after = parse_after(request.query.get("after", request.headers.get("last-event-id")))
        cut_after = self.faults.take_cut()
        keepalive_s = self.config.keepalive_s
        await stream_events(receive, send, run, after=after, keepalive_s=keepalive_s, cut_after=cut_after)

    # --- fault injection (admin token) ---------------------------------------------------------------

    async def _get_faults(self, request: Request) -> Reply:
        return 200, {"faults": self.faults.describe()}

    async def _set_faults(self, request: Request) -> Reply:
        body = request.json_object()
        forget = body.get("forget_runs", False)
        if not isinstance(forget, bool):
            raise invalid({"forget_runs": "a boolean"})
        self.faults.configure(body)
        forgotten = await self.registry.forget_all() if forget else 0
        return 200, {"faults": self.faults.describe(), "forgotten_runs": forgotten}

    async def _clear_faults(self, request: Request) -> Reply:
        self.faults.clear()
        return 200, {"faults": self.faults.describe()}
