import re
import uuid
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

# Accept only ids a log pipeline can carry safely: no spaces, quotes or control characters, bounded length.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
HEADER = "X-Request-ID"


def request_id_for(request: HttpRequest) -> str:
    incoming = request.META.get("HTTP_X_REQUEST_ID", "")
    return incoming if VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex


class RequestIdMiddleware:
    """Give every request an id: the caller's ``X-Request-ID`` when valid, else a new one; echo it back.

    It runs before django-structlog's middleware, which binds ``request.META["HTTP_X_REQUEST_ID"]`` to the
    log context, so the id in the logs, on ``request.request_id`` and in the response always agree.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _prepare(self, request: HttpRequest) -> str:
        request_id = request_id_for(request)
        request.META["HTTP_X_REQUEST_ID"] = request_id
        request.request_id = request_id  # type: ignore[attr-defined]
        return request_id

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if iscoroutinefunction(self):
            return self._acall(request)  # type: ignore[attr-defined]
        request_id = self._prepare(request)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        request_id = self._prepare(request)
        response = await self.get_response(request)
        response[HEADER] = request_id
        return response
