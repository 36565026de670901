"""API conventions: one error shape for every failure, and the default pagination."""

from __future__ import annotations

from typing import Any

import structlog
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core import params
from core.errors import DomainError

logger = structlog.get_logger(__name__)

_MESSAGES = {
    400: "Invalid input.",
    404: "Not found.",
    500: "Internal server error.",
}


class Pagination(PageNumberPagination):
    """DRF's page-number pagination with strict numbers (DRF's accepts "١٢" and drops what it cannot read)."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param) or "1"
        if raw in self.last_page_strings:
            return paginator.num_pages
        return params.integer(raw, name=self.page_query_param, default=1, minimum=1)

    def get_page_size(self, request):
        raw, name = request.query_params.get(self.page_size_query_param), self.page_size_query_param
        default = self.page_size or self.max_page_size  # PAGE_SIZE is set (settings.py): never None here
        return params.integer(raw, name=name, default=default, minimum=1, maximum=self.max_page_size)


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail}}


def _api_exception_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        return error_body("invalid", _MESSAGES[400], exc.detail)
    code = exc.get_codes()
    code = code if isinstance(code, str) else exc.default_code
    wait = getattr(exc, "wait", None)
    detail = {"retry_after": wait} if isinstance(exc, exceptions.Throttled) else None
    return error_body(code, str(exc.detail), detail)


def _as_api_exception(exc: Exception) -> exceptions.APIException | None:
    if isinstance(exc, exceptions.APIException):
        return exc
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(exc.messages)
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's exception handler: every error, including unexpected ones, in the one JSON shape."""
    set_rollback()
    if isinstance(exc, DomainError):
        headers = exc.response_headers()
        body = error_body(exc.code, str(exc.message), exc.detail)  # the message in the request's language
        return Response(body, status=exc.status, headers=headers)
    api_exc = _as_api_exception(exc)
    if api_exc is None:
        logger.exception("unhandled_api_error", view=type(context.get("view")).__name__)
        request = context.get("request")
        request_id = getattr(request, "request_id", None)
        body = error_body("server_error", _MESSAGES[500], {"request_id": request_id})
        return Response(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    headers = {}
    if getattr(api_exc, "auth_header", None):
        headers["WWW-Authenticate"] = api_exc.auth_header  # type: ignore[attr-defined]
    wait = getattr(api_exc, "wait", None)
    if isinstance(api_exc, exceptions.Throttled) and wait is not None:
        headers["Retry-After"] = str(int(wait))
    return Response(_api_exception_body(api_exc), status=api_exc.status_code, headers=headers)


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def json_404(request: HttpRequest, exception: Exception | None = None) -> Any:
    if not is_api(request):
        from django.views.defaults import page_not_found

        return page_not_found(request, exception)
    return JsonResponse(error_body("not_found", _MESSAGES[404]), status=404)


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """The last route under /api/: a path no API view matched is a JSON 404 even with DEBUG on (Django
    answers its HTML page then, not ``handler404``), and a missing trailing slash is named instead of
    redirected (a redirected POST loses its body; under DEBUG it is a 500)."""
    detail = None
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            detail = {"hint": f"Did you mean {request.path}/ ?"}
    return JsonResponse(error_body("not_found", _MESSAGES[404], detail), status=404)


def json_500(request: HttpRequest) -> Any:
    if not is_api(request):
        from django.views.defaults import server_error

        return server_error(request)
    body = error_body("server_error", _MESSAGES[500], {"request_id": getattr(request, "request_id", None)})
    return JsonResponse(body, status=500)
