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

Each hop still runs in a single thread from start to end, so a view's transaction, its queries and its
middleware see one connection. Consecutive hops of one request (``request_started``, the chain, the
response's ``close``) may run on different threads of the pool; none of them carries a transaction
across hops. Long-lived responses (SSE) borrow a thread only while they read storage, not for their life.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers import asgi, base


class ASGIHandler(asgi.ASGIHandler):
    def __init__(self, *, threads: int) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="django-web")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        async with ThreadSensitiveContext(executor=self.executor):
            await self.handle(scope, receive, send)

    async def get_response_async(self, request):
        # The sync get_response sets the urlconf, runs the chain, logs 4xx/5xx and registers request.close.
        return await sync_to_async(self.get_response)(request)
