"""Django's ASGI handler, run the way a threaded WSGI server runs Django.

Django's own ``ASGIHandler`` gives every request a new thread (a fresh ``ThreadSensitiveContext`` makes a
one-thread executor per request) and runs each sync middleware's ``process_request`` and
``process_response`` in separate hops to it. Measured on the run-start path (docs/architecture.md):
about 16 thread hops per request, a new thread per request, and so a new Django database connection and a
new Redis connection (both are per thread) per request; the event loop waited on the GIL behind them and
a run's POST spent ~400 ms queued before its first query at 16 concurrent clients.

This handler keeps Django's request handling, signals, streaming and disconnect handling, and changes two
things:

* the middleware chain is built in sync mode, so one hop runs the whole chain and the view;
* every request's thread-sensitive work runs on one fixed pool of persistent threads (``WEB_THREADS``),
  so database and Redis connections are kept per thread and reused, like a threaded WSGI server.

A streaming response with a sync iterator (WhiteNoise's static files, downloads) is read one chunk at a
time on the thread pool and sent as it is read: Django would otherwise read it whole before sending it, with
a warning each time. A stream that raises is closed before the error goes on (Django leaves it open).

It also refuses request bodies over ``API_MAX_BODY_BYTES`` with a 413 before reading them: Django's
handler reads the whole body into a spooled file before any middleware runs, so a limit enforced later
would come after the upload. A declared ``Content-Length`` over the limit is refused at once; a chunked
body is counted as it arrives and reading stops at the first chunk past the limit.

Each hop still runs in a single thread from start to end, so a view's transaction, its queries and its
middleware see one connection. Consecutive hops of one request (``request_started``, the chain, the
response's ``close``) may run on different threads of the pool; none of them carries a transaction
across hops. Long-lived responses (SSE) borrow a thread only while they read storage, not for their life.
"""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers import asgi, base


class BodyTooLarge(Exception):
    pass


class ASGIHandler(asgi.ASGIHandler):
    def __init__(self, *, threads: int, max_body_bytes: int) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="django-web")
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        if declared_length(scope) > self.max_body_bytes:
            await self.refuse_too_large(send)
            return
        async with ThreadSensitiveContext(executor=self.executor):
            try:
                await self.handle(scope, receive, send)
            except BodyTooLarge:  # raised while reading the body: nothing has been sent yet
                await self.refuse_too_large(send)

    async def read_body(self, receive):
        """Django's ``read_body``, counting: past the limit it stops reading and raises ``BodyTooLarge``."""
        size = settings.FILE_UPLOAD_MAX_MEMORY_SIZE
        body_file = tempfile.SpooledTemporaryFile(max_size=size, mode="w+b")  # noqa: SIM115 (returned open)
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body_file.close()
                raise RequestAborted()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                body_file.close()
                raise BodyTooLarge()
            body_file.write(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body_file.seek(0)
        return body_file

    async def refuse_too_large(self, send) -> None:
        error = {
            "code": "too_large",
            "message": f"The request body exceeds {self.max_body_bytes} bytes.",
            "detail": {"max_bytes": self.max_body_bytes},
        }
        body = json.dumps({"error": error}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),  # the rest of the body is not read: the connection cannot be reused
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def send_response(self, response, send):
        if response.streaming and not response.is_async:
            response.streaming_content = _chunks_from_thread(iter(response.streaming_content))
        try:
            await super().send_response(response, send)
        except Exception:
            # Django closes a response after sending it, or after its client left (a CancelledError, which
            # it absorbs), but not when its stream raised: a download's file would stay open and its audit
            # would never learn the stream stopped. Closed here, then the error goes on to the server.
            await sync_to_async(response.close)()
            raise

    async def get_response_async(self, request):
        # The sync get_response sets the urlconf, runs the chain, logs 4xx/5xx and registers request.close.
        return await sync_to_async(self.get_response)(request)


async def _chunks_from_thread(chunks):
    """A sync iterator's chunks, each produced on the request's thread pool (the response closes its file)."""
    step = sync_to_async(lambda: next(chunks, None))
    while (chunk := await step()) is not None:
        yield chunk


def declared_length(scope) -> int:
    """The request's ``Content-Length`` (0 when absent; a malformed one is left to the server and Django)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() and len(value) <= 18 else 0
    return 0
