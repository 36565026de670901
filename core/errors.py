"""The base of every domain exception.

Services raise subclasses; ``controlplane.api.exception_handler`` renders them as
``{"error": {"code", "message", "detail"}}`` with ``status``. This leaf module imports nothing, so every app
may depend on it without depending on the project's wiring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class DomainError(Exception):
    status = 400
    code = "invalid_request"
    # Translated when rendered (the request's language): the portal shows these messages as they come.
    message: StrOrPromise = gettext_lazy("The request cannot be carried out.")

    def __init__(self, message: StrOrPromise | None = None, *, detail: Any = None, code: str | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.detail = detail
        if code:
            self.code = code

    def response_headers(self) -> dict[str, str] | None:
        """Headers the error's response carries (a 429's ``Retry-After``, a 416's ``Content-Range``)."""
        return None


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = gettext_lazy("Not found.")


class Forbidden(DomainError):
    """The user may see the object but not do this to it (what they may not see is a ``NotFound``)."""

    status = 403
    code = "forbidden"
    message = gettext_lazy("You may not do this.")


class Conflict(DomainError):
    status = 409
    code = "conflict"
    message = gettext_lazy("The request conflicts with the current state.")


class ServiceUnavailable(DomainError):
    status = 503
    code = "unavailable"
    message = gettext_lazy("The service needed for this request is unavailable.")


class TooManyRequests(DomainError):
    """A limit on what one user may hold at once; the client may try again after ``retry_after`` seconds
    (the response's ``Retry-After``)."""

    status = 429
    code = "too_many_requests"
    message = gettext_lazy("Too many requests.")
    retry_after = 10

    def response_headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}
