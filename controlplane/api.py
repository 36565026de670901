"""API conventions: one error shape for every failure, strict JSON bodies, and the default pagination."""

from __future__ import annotations

import math
import re
from typing import Any

import structlog
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
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


JSON_MAX_DEPTH = 64
# PostgreSQL's text and jsonb cannot hold NUL; a lone surrogate cannot be encoded as UTF-8 at all.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


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
        raw = request.query_params.get(self.page_size_query_param)
        top = self.max_page_size
        return params.integer(
            raw, name=self.page_size_query_param, default=self.page_size, minimum=1, maximum=top
        )


class StrictJSONParser(JSONParser):
    """JSON bodies the database can store: nested at most ``JSON_MAX_DEPTH`` deep, finite numbers, no NUL
    or lone surrogates in strings or keys. Python's json has no depth limit (deep nesting ends in a
    ``RecursionError``), reads ``1e999`` as infinity (which jsonb refuses) and decodes ``\\u0000`` and
    ``\\ud800`` escapes into strings PostgreSQL cannot take: each would be a 500 later, so each is a 400
    here, naming where it is."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {JSON_MAX_DEPTH}.") from None
        problem = json_problem(data)
        if problem is not None:
            raise exceptions.ValidationError({problem[0]: [problem[1]]})
        return data


def json_problem(value: Any) -> tuple[str, str] | None:
    """Where in a decoded JSON document the first value we refuse is, and why (None if there is none)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, where, depth = stack.pop()
        if depth > JSON_MAX_DEPTH:
            return where or "body", f"Nested deeper than {JSON_MAX_DEPTH} levels."
        if isinstance(item, str) and _UNSTORABLE.search(item):
            return where or "body", "Must not contain NUL characters or lone surrogates."
        if isinstance(item, float) and not math.isfinite(item):
            return where or "body", "Must be a finite number."
        if isinstance(item, dict):
            for key, child in item.items():
                if _UNSTORABLE.search(key):
                    return where or "body", "Keys must not contain NUL characters or lone surrogates."
                stack.append((child, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where or 'body'}[{i}]", depth + 1) for i, child in enumerate(item))
    return None


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
        return Response(error_body(exc.code, exc.message, exc.detail), status=exc.status)
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


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def json_404(request: HttpRequest, exception: Exception | None = None) -> Any:
    if not _is_api(request):
        from django.views.defaults import page_not_found

        return page_not_found(request, exception)
    return JsonResponse(error_body("not_found", _MESSAGES[404]), status=404)


def json_500(request: HttpRequest) -> Any:
    if not _is_api(request):
        from django.views.defaults import server_error

        return server_error(request)
    body = error_body("server_error", _MESSAGES[500], {"request_id": getattr(request, "request_id", None)})
    return JsonResponse(body, status=500)
