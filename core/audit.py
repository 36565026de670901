"""Who made a change the audit log (django-auditlog) records, and from where.

auditlog's own middleware is not used: it believes ``X-Forwarded-For`` from anyone, and its context
connects and disconnects a ``pre_save`` receiver per request (a nested one never restores the outer). Here
one receiver stamps every log entry from two context variables: the actor a service or command named with
``acting_as(user)``, else the request's user (read when the entry is written, so a DRF token user,
authenticated in the view, is found too), and the client address as ``client_address`` reads it
(``X-Forwarded-For`` only from ``TRUSTED_PROXIES``). The correlation id is the request id of the logs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from django.db.models.signals import pre_save
from django.http import HttpRequest, HttpResponse

from core.throttling import client_address

_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)
_actor: ContextVar[Any] = ContextVar("audit_actor", default=None)


@contextlib.contextmanager
def acting_as(user: Any) -> Iterator[None]:
    """Changes made inside are recorded as made by ``user`` (None: the request's user, if any)."""
    token = _actor.set(user if getattr(user, "is_authenticated", False) else None)
    try:
        yield
    finally:
        _actor.reset(token)


class AuditContextMiddleware:
    """Makes the request known to the audit log's receiver for as long as the request runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def request_id() -> str | None:
    """The correlation id of an entry (``AUDITLOG_CID_GETTER``): the request's id, as in the logs."""
    request = _request.get()
    return getattr(request, "request_id", None) if request is not None else None


def current_actor() -> Any:
    actor = _actor.get()
    if actor is not None:
        return actor
    user = getattr(_request.get(), "user", None)
    return user if getattr(user, "is_authenticated", False) else None


def stamp_log_entry(sender: Any, instance: Any, **kwargs: Any) -> None:
    if instance.actor_id is None:
        actor = current_actor()
        if actor is not None:
            instance.actor = actor
            instance.actor_email = getattr(actor, "email", None) or None
    request = _request.get()
    if request is not None and not instance.remote_addr:
        instance.remote_addr = client_address(request) or None


pre_save.connect(stamp_log_entry, sender="auditlog.LogEntry", dispatch_uid="core.audit.stamp_log_entry")
