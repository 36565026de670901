"""The HTTP client of executor protocol v1 (docs/executor-protocol.md).

Every failure raises ``ExecutorError`` with an ``error_class`` of ``timeout`` (connect or read timeout),
``network`` (refused, reset, a stream cut before the run's terminal event) or ``http_status`` (the executor
answered with an error status, or with something that is not protocol v1). ``retryable`` is what the queue's
retry policy reads: timeouts, network errors and 5xx are worth another attempt, 4xx never are.

Retries inside one call are urllib3's ``Retry``: connection errors, read timeouts and 5xx, honouring
``Retry-After``. POST is retried too because every POST of the protocol is idempotent — a start by
``run_id``, an answer by ``request_id``, a cancel by nature — so a retry after a lost response cannot run
anything twice. Each retry is logged (``executor_retry``) and ``attempts`` is on every reply and error.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Generator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import quote, urlencode

import certifi
import requests.utils
import structlog
import urllib3
from opentelemetry.trace import SpanKind
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from agents.sse import iter_sse_batches
from core import tracing

if TYPE_CHECKING:
    from agents.models import Executor

logger = structlog.get_logger(__name__)

ErrorClass = Literal["timeout", "network", "http_status"]
TERMINAL_EVENT = "run.finished"
BODY_EXCERPT_CHARS = 500


class ExecutorError(Exception):
    """Any failure talking to an executor; ``error_class`` and ``retryable`` drive the run's retry policy."""

    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        status: int | None = None,
        body: str = "",
        code: str | None = None,
        attempts: int = 1,
    ):
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.status = status
        self.body = body
        self.code = code
        self.attempts = attempts

    @property
    def retryable(self) -> bool:
        if self.error_class != "http_status":
            return True
        return self.status is not None and self.status >= 500

    def detail(self) -> dict[str, Any]:
        """What a run records as its ``error_detail``."""
        return {
            "error_class": self.error_class,
            "message": self.message,
            "status": self.status,
            "code": self.code,
            "body": self.body,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class ExecutorConfig:
    name: str
    base_url: str
    token: str = field(repr=False)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    retries: int = 3


@dataclass(frozen=True, slots=True)
class ExecutorEvent:
    seq: int
    type: str
    data: dict[str, Any]

    @property
    def terminal(self) -> bool:
        return self.type == TERMINAL_EVENT


@dataclass(frozen=True)
class Reply:
    data: Any
    status: int
    attempts: int


class _Attempts:
    def __init__(self, executor: str) -> None:
        self.executor = executor
        self.count = 1


# The Retry object is shared by every call of a session; the attempt count of the call in progress lives in
# a context variable that the caller sets, since urllib3 calls ``increment`` in the caller's thread.
_current_attempts: ContextVar[_Attempts | None] = ContextVar("executor_attempts", default=None)


class ExecutorRetry(Retry):
    # urllib3 would also retry 413 and 429 when they carry Retry-After; the protocol never retries a 4xx.
    RETRY_AFTER_STATUS_CODES = frozenset()
    # A Retry-After of an hour would park a worker thread for an hour: beyond this, the queue's backoff
    # (which frees the thread) is the better place to wait.
    MAX_RETRY_AFTER_S = 30.0

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, self.MAX_RETRY_AFTER_S)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        new_retry = super().increment(method, url, response, error, _pool, _stacktrace)
        attempts = _current_attempts.get()
        if attempts is not None:
            attempts.count += 1
        failure: dict[str, str | int] = {}
        if response is not None:
            failure["http.response.status_code"] = response.status
        if error is not None:
            failure["error.type"] = type(error).__name__
        tracing.current().add_event("retry", failure)  # on the call's span, one per failed attempt
        logger.warning(
            "executor_retry",
            executor=attempts.executor if attempts else None,
            method=method,
            path=url,
            status=getattr(response, "status", None),
            error=type(error).__name__ if error else None,
            next_attempt=attempts.count if attempts else None,
        )
        return new_retry


def build_retry(retries: int, backoff_factor: float = 0.2) -> ExecutorRetry:
    return ExecutorRetry(
        total=retries,
        other=0,  # SSL and other errors are not transient
        allowed_methods=frozenset({"GET", "POST"}),
        status_forcelist=frozenset(range(500, 600)),
        backoff_factor=backoff_factor,
        backoff_max=5.0,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last 5xx comes back as a response: we raise with its status and body
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps: requests wraps urllib3's ``MaxRetryError``, which has a reason."""
    seen: BaseException | None = exc
    for _ in range(10):  # a bound, in case some library builds a cycle
        if seen is None:
            return
        yield seen
        if isinstance(seen, MaxRetryError):
            seen = seen.reason
        elif seen.args and isinstance(seen.args[0], BaseException):
            seen = seen.args[0]
        else:
            seen = seen.__cause__


def _is_timeout(exc: BaseException) -> bool:
    for cause in _causes(exc):
        if isinstance(cause, NewConnectionError):  # a subclass of ConnectTimeoutError, yet a refusal
            return False
        if isinstance(cause, Urllib3Timeout | TimeoutError):
            return True
    return False


# What a call or a body read can raise below the protocol: urllib3's errors (retries exhausted, protocol
# errors, timeouts) and the socket's own.
TRANSPORT_ERRORS = (Urllib3Error, OSError)


def _transport_error(exc: BaseException, where: str, attempts: int) -> ExecutorError:
    root = list(_causes(exc))[-1]
    error_class: ErrorClass = "timeout" if _is_timeout(exc) else "network"
    return ExecutorError(error_class, f"{where}: {type(root).__name__}: {root}"[:300], attempts=attempts)


def _status_error(response: BaseHTTPResponse, where: str, attempts: int) -> ExecutorError:
    try:
        raw = response.data  # preloaded, or read now from a stream
    except TRANSPORT_ERRORS:
        raw = b""
    body = raw.decode("utf-8", errors="replace")[:BODY_EXCERPT_CHARS]
    code = None
    with contextlib.suppress(ValueError, KeyError, TypeError):
        code = json.loads(raw)["error"]["code"]
    message = f"{where}: HTTP {response.status}" + (f" ({code})" if code else "")
    status = response.status
    return ExecutorError("http_status", message, status=status, body=body, code=code, attempts=attempts)


def _parse_event(data: str, where: str) -> ExecutorEvent:
    try:
        payload = json.loads(data)
        event = ExecutorEvent(int(payload["seq"]), str(payload["type"]), payload["data"])
        if not isinstance(event.data, dict):
            raise TypeError("data is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        message = f"{where}: malformed event: {type(exc).__name__}"
        raise ExecutorError("http_status", message, status=200, body=data[:BODY_EXCERPT_CHARS]) from exc
    if _SUSPECT_ESCAPE.search(data) and not _storable(event.data):
        message = f"{where}: event {event.seq} holds a NUL or a lone surrogate, which cannot be stored"
        raise ExecutorError(
            "http_status", message, status=200, code="protocol_error", body=data[:BODY_EXCERPT_CHARS]
        )
    return event


# JSON escapes of what PostgreSQL cannot store in text or jsonb (NUL) or UTF-8 cannot encode (surrogates,
# legal only in pairs); a raw control character is already refused by json.loads. The search is cheap and
# almost never matches, so the walk below runs almost never.
_SUSPECT_ESCAPE = re.compile(r"\\u(0000|d[89a-f])", re.IGNORECASE)


def _storable(value: Any) -> bool:
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(map(_storable, value))
    return True


class ExecutorClient:
    """One executor's protocol v1 calls over one urllib3 pool (keep-alive connections).

    urllib3 directly, not requests: requests' session layer (preparing, merging settings, hooks, cookies)
    cost about 0.3 ms of CPU per call on our machines, nearly as much as the call itself, and a run makes
    two calls. The Authorization header is ours alone: no ``~/.netrc`` can replace it, no redirect is
    followed with it.
    """

    def __init__(self, config: ExecutorConfig, *, backoff_factor: float = 0.2):
        self.config = config
        self.retry = build_retry(config.retries, backoff_factor)
        self.timeout = urllib3.Timeout(connect=config.connect_timeout_s, read=config.read_timeout_s)
        self.headers = {"Authorization": f"Bearer {config.token}", "Accept": "application/json"}
        # The environment's proxy (honouring NO_PROXY) and CA bundle, read once rather than per call.
        proxy = requests.utils.get_environ_proxies(config.base_url).get(config.base_url.split(":", 1)[0])
        ca_certs = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
        options: dict[str, Any] = {"retries": self.retry, "timeout": self.timeout, "ca_certs": ca_certs}
        self.pool = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)

    def close(self) -> None:
        self.pool.clear()

    def _url(self, path: str) -> str:
        return self.config.base_url.rstrip("/") + path

    def _send(
        self,
        method: str,
        path: str,
        *,
        op: str,
        run_id: str | None = None,
        body: Any = None,
        params: dict[str, Any] | None = None,
        traceparent: str | None = None,
        stream: bool = False,
    ) -> tuple[BaseHTTPResponse, int]:
        """One call, under a client span ``executor.<op>`` when it belongs to a trace (a current span, or
        the run's ``traceparent``): the executor is sent that span's context, and retries are its events."""
        request = {"body": body, "params": params, "stream": stream}
        if not tracing.state.enabled:
            return self._request(method, path, traceparent=traceparent, **request)
        within = tracing.current().is_recording()
        if not (within or traceparent):  # a poll (agent status, health) starts no trace of its own
            return self._request(method, path, traceparent=traceparent, **request)
        attributes = {"executor.name": self.config.name, "http.request.method": method, "url.path": path}
        if run_id is not None:
            attributes["run.id"] = run_id
        parent = None if within else traceparent
        with tracing.span(
            f"executor.{op}", parent=parent, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            try:
                response, attempts = self._request(
                    method, path, traceparent=tracing.traceparent_of(span, traceparent), **request
                )
            except ExecutorError as exc:
                span.set_attribute("executor.attempts", exc.attempts)
                if exc.status is not None:
                    span.set_attribute("http.response.status_code", exc.status)
                tracing.mark_error(span, exc.error_class, str(exc))
                raise
            span.set_attributes({"http.response.status_code": response.status, "executor.attempts": attempts})
            return response, attempts

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any,
        params: dict[str, Any] | None,
        traceparent: str | None,
        stream: bool,
    ) -> tuple[BaseHTTPResponse, int]:
        where = f"{method} {path}"
        headers = dict(self.headers)
        if traceparent:
            headers["traceparent"] = traceparent
        if stream:
            headers["Accept"] = "text/event-stream"
        encoded = None
        if body is not None:
            encoded = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        url = self._url(path) + (f"?{urlencode(params)}" if params else "")
        attempts = _Attempts(self.config.name)
        token = _current_attempts.set(attempts)
        started = time.monotonic()
        try:
            response = self.pool.request(
                method,
                url,
                body=encoded,
                headers=headers,
                preload_content=not stream,
                redirect=False,  # the protocol has none; never resend the token elsewhere
            )
        except TRANSPORT_ERRORS as exc:
            raise _transport_error(exc, where, attempts.count) from exc
        finally:
            _current_attempts.reset(token)
        elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        logger.debug(
            "executor_call",
            executor=self.config.name,
            call=where,
            status=response.status,
            attempts=attempts.count,
            elapsed_ms=elapsed_ms,
        )
        if response.status >= 300:
            error = _status_error(response, where, attempts.count)
            _close(response)
            raise error
        return response, attempts.count

    def _call(self, method: str, path: str, *, op: str, **kwargs: Any) -> Reply:
        response, attempts = self._send(method, path, op=op, **kwargs)
        where = f"{method} {path}"
        try:
            data = json.loads(response.data)
        except ValueError as exc:
            excerpt = response.data.decode("utf-8", errors="replace")[:BODY_EXCERPT_CHARS]
            message = f"{where}: the reply is not JSON"
            status = response.status
            raise ExecutorError(
                "http_status", message, status=status, body=excerpt, attempts=attempts
            ) from exc
        return Reply(data, response.status, attempts)

    @staticmethod
    def _run_path(run_id: str, suffix: str = "") -> str:
        return f"/v1/runs/{quote(str(run_id), safe='')}{suffix}"

    def health(self) -> Reply:
        return self._call("GET", "/v1/health", op="health")

    def list_agents(self) -> Reply:
        return self._call("GET", "/v1/agents", op="list_agents")

    def start_run(
        self,
        *,
        run_id: str,
        app: str,
        prompt: dict[str, Any],
        input: dict[str, Any],
        agent: dict[str, Any] | None = None,
        plugins: list[dict[str, Any]] | None = None,
        tool_gateway: dict[str, str] | None = None,
        settings: dict[str, Any] | None = None,
        traceparent: str | None = None,
    ) -> Reply:
        body: dict[str, Any] = {
            "run_id": str(run_id),
            "app": app,
            "prompt": prompt,
            "input": input,
            "plugins": plugins or [],
            "tool_gateway": tool_gateway,
            "settings": settings or {},
        }
        if agent is not None:
            body["agent"] = agent
        return self._call(
            "POST", "/v1/runs", op="start_run", run_id=str(run_id), body=body, traceparent=traceparent
        )

    def get_run(self, run_id: str, *, traceparent: str | None = None) -> Reply:
        return self._call(
            "GET", self._run_path(run_id), op="get_run", run_id=str(run_id), traceparent=traceparent
        )

    def send_input(
        self, run_id: str, *, request_id: str, answer: str, traceparent: str | None = None
    ) -> Reply:
        body = {"request_id": request_id, "answer": answer}
        path = self._run_path(run_id, "/input")
        return self._call(
            "POST", path, op="send_input", run_id=str(run_id), body=body, traceparent=traceparent
        )

    def cancel_run(self, run_id: str, *, traceparent: str | None = None) -> Reply:
        path = self._run_path(run_id, "/cancel")
        return self._call("POST", path, op="cancel_run", run_id=str(run_id), traceparent=traceparent)

    def iter_events(
        self, run_id: str, *, after: int = 0, traceparent: str | None = None
    ) -> Iterator[ExecutorEvent]:
        """The run's events after ``after``, in order, ending with its terminal event (see
        ``iter_event_batches``)."""
        for batch in self.iter_event_batches(run_id, after=after, traceparent=traceparent):
            yield from batch

    def iter_event_batches(
        self, run_id: str, *, after: int = 0, traceparent: str | None = None, keepalives: bool = False
    ) -> Generator[list[ExecutorEvent], None, None]:
        """The run's events after ``after``, in order, ending with its terminal event; one list per network
        read, so a caller can store a burst in one transaction without waiting for more. With
        ``keepalives``, a keep-alive yields an empty list: the caller wakes while the executor is quiet.

        A stream that breaks or ends before the terminal event raises ``ExecutorError`` (``network``, or
        ``timeout`` when nothing — not even a keep-alive — arrived within the read timeout); the caller
        resumes with ``after`` = the last seq it stored. Events at or below the last seen are skipped; a gap
        raises ``network`` so the caller resumes from before it.
        """
        path = self._run_path(run_id, "/events")
        where = f"GET {path}"
        params = {"after": after}
        response, attempts = self._send(
            "GET", path, op="events", run_id=str(run_id), params=params, traceparent=traceparent, stream=True
        )
        last = after
        try:
            for messages in iter_sse_batches(response.stream(None), idle=keepalives):
                if not messages:
                    yield []
                    continue
                batch: list[ExecutorEvent] = []
                for message in messages:
                    event = _parse_event(message.data, where)
                    if event.seq <= last:
                        continue
                    if event.seq != last + 1:
                        if batch:
                            yield batch
                        raise ExecutorError("network", f"{where}: gap after seq {last} (got {event.seq})")
                    last = event.seq
                    batch.append(event)
                    if event.terminal:
                        try:
                            yield batch
                        finally:
                            _release_for_reuse(response)
                        return
                if batch:
                    yield batch
        except TRANSPORT_ERRORS as exc:
            raise _transport_error(exc, where, attempts) from exc
        finally:
            _close(response)  # a connection read to its end stays in the pool, others are closed
        raise ExecutorError("network", f"{where}: the stream ended after seq {last}, before the run finished")


DRAIN_TIMEOUT_S = 0.05


def _close(response: BaseHTTPResponse) -> None:
    """Done with a response: its connection goes back to the pool if it was read to the end (urllib3 then
    released it already), and is closed otherwise."""
    response.close()
    response.release_conn()


def _release_for_reuse(response: BaseHTTPResponse) -> None:
    """After the terminal event: read the end of the body so the connection goes back to the pool.

    The executor ends the stream right after the terminal event (usually in the same packet); a stream
    left unread is closed instead, and the next call pays for a new connection on both sides. An executor
    that keeps the stream open gets ``DRAIN_TIMEOUT_S``, then the connection is closed as before.
    """
    connection = response.connection
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    sock.settimeout(DRAIN_TIMEOUT_S)  # the pool sets the next request's timeouts afresh
    response.drain_conn()  # swallows a timeout or a reset; closing the response then drops the socket


def config_for(executor: Executor) -> ExecutorConfig:
    return ExecutorConfig(
        name=executor.name,
        base_url=executor.base_url,
        token=executor.token,
        connect_timeout_s=executor.connect_timeout_s,
        read_timeout_s=executor.read_timeout_s,
        retries=executor.retries,
    )


# ``requests.Session`` is not documented as thread-safe and the worker drives runs from a thread pool, so
# each thread keeps its own client (and connection pool) per executor.
_local = threading.local()


def client_for(executor: Executor) -> ExecutorClient:
    """The calling thread's client for this executor, rebuilt when the executor's settings changed."""
    clients: dict[int, ExecutorClient] = _local.__dict__.setdefault("clients", {})
    return cached_client(clients, executor.pk, config_for(executor))


def cached_client(clients: dict[int, ExecutorClient], key: int, config: ExecutorConfig) -> ExecutorClient:
    """The client kept in ``clients`` under ``key``, replaced (and the old one closed) when ``config``
    changed."""
    client = clients.get(key)
    if client is None or client.config != config:
        if client is not None:
            client.close()
        client = clients[key] = ExecutorClient(config)
    return client
