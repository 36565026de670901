"""Writes of app grants: what holders of a role may do on an app (or on every app)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy

from agents.models import App, AppGrant
from core.audit import acting_as
from core.errors import Conflict
from rbac.models import Role


class DuplicateGrant(Conflict):
    code = "duplicate_grant"
    message = gettext_lazy("This role already has this grant.")


def grant_create(*, actor: Any, role: Role, action: str, app: App | None = None) -> AppGrant:
    """Let holders of ``role`` do ``action`` on ``app`` (every app when None); a duplicate is a 409."""
    grant = AppGrant(
        role=role,
        action=action,
        app=app,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    try:
        with acting_as(actor), transaction.atomic():
            grant.save()
    except IntegrityError as exc:  # the unique constraints: this grant exists already
        detail = {"role": role.slug, "action": action, "app": getattr(app, "slug", None)}
        raise DuplicateGrant(detail=detail) from exc
    return grant


def grant_delete(*, actor: Any, grant: AppGrant) -> None:
    with acting_as(actor):
        grant.delete()
