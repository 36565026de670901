"""The base of every domain exception.

Services raise subclasses; ``controlplane.api.exception_handler`` renders them as
``{"error": {"code", "message", "detail"}}`` with ``status``. This leaf module imports nothing, so every app
may depend on it without depending on the project's wiring.
"""

from typing import Any


class DomainError(Exception):
    status = 400
    code = "invalid_request"
    message = "The request cannot be carried out."

    def __init__(self, message: str | None = None, *, detail: Any = None, code: str | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.detail = detail
        if code:
            self.code = code


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = "Not found."


class Forbidden(DomainError):
    """The user may see the object but not do this to it (what they may not see is a ``NotFound``)."""

    status = 403
    code = "forbidden"
    message = "You may not do this."


class Conflict(DomainError):
    status = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class ServiceUnavailable(DomainError):
    status = 503
    code = "unavailable"
    message = "The service needed for this request is unavailable."


class TooManyRequests(DomainError):
    """A limit on what one user may hold at once; the client may try again after ``retry_after`` seconds
    (the response's ``Retry-After``)."""

    status = 429
    code = "too_many_requests"
    message = "Too many requests."
    retry_after = 10
