"""Request hardening that must hold for every view, including ones not written yet.

* Under ``/api/`` (and on the health probes) every error is the one JSON shape whatever ``DEBUG``
  says: with ``DEBUG`` on, Django answers its HTML technical pages (404, 500, a SuspiciousOperation's
  400) and never calls ``handler404`` / ``handler500``; a CSRF failure in a plain view and
  ``require_GET``'s 405 are HTML too. Those responses are replaced here.
* An API answer that is data (JSON, an event stream) gets the strictest Content-Security-Policy, a constant:
  it is never a page, so it may load nothing and be framed by nothing. django-csp (outside this middleware)
  leaves a response that has one alone and builds the portal's policy only for pages, which spares the
  hot path building a policy per response (~55 µs each).
* A NUL in a query parameter is a 400 naming it: PostgreSQL's text cannot hold one, so a view passing it
  to a filter would answer 500. A cookie holding one (an octal escape in a quoted cookie value) is dropped,
  since the session middleware would look it up. The file browser's API is left to refuse its own (it
  audits every refusal, a NUL in a path included).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, JsonResponse

from controlplane.api import error_body

# Paths whose every answer is JSON: the API and the health probes (the admin keeps Django's pages).
JSON_PATHS = ("/api/", "/healthz", "/readyz")
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
DATA_TYPES = ("application/json", "text/event-stream")
CHECK_THEIR_OWN_NUL = ("/api/files/",)

_CODES = {
    400: "bad_request",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    500: "server_error",
}


class HardeningMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = _nul_in_query(request)
        if refused is not None:
            return refused
        _drop_nul_cookies(request)
        response = self.get_response(request)
        if not request.path.startswith(JSON_PATHS):
            return response
        if response.status_code >= 400 and not _is_json(response):
            response = _json_error(request, response)
        if response.get("Content-Type", "").startswith(DATA_TYPES):
            response.headers.setdefault("Content-Security-Policy", DATA_POLICY)
        return response


def _nul_in_query(request: HttpRequest) -> JsonResponse | None:
    if request.path.startswith(CHECK_THEIR_OWN_NUL):
        return None
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            detail = {name.replace("\x00", "\\x00"): ["Must not contain NUL characters."]}
            return JsonResponse(error_body("invalid", "Invalid input.", detail), status=400)
    return None


def _drop_nul_cookies(request: HttpRequest) -> None:
    for name in [name for name, value in request.COOKIES.items() if "\x00" in name + value]:
        del request.COOKIES[name]


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _json_error(request: HttpRequest, response: HttpResponse) -> JsonResponse:
    status = response.status_code
    code = _CODES.get(status, f"http_{status}")
    try:
        message = HTTPStatus(status).phrase + "."
    except ValueError:
        message = "Error."
    detail = {"request_id": getattr(request, "request_id", None)} if status >= 500 else None
    replaced = JsonResponse(error_body(code, message, detail), status=status)
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        if header in response:
            replaced[header] = response[header]
    return replaced
