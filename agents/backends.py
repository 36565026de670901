"""An authentication backend that authenticates nobody: it answers per-app permissions for the admin and
DRF, ``user.has_perm("agents.use_app", app)``, from the app grants (``agents.access``)."""

from __future__ import annotations

from typing import Any

from agents.access import PERMISSIONS, can
from agents.models import App


class AppGrantBackend:
    def authenticate(self, request: Any, **credentials: Any) -> None:
        return None

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        action = PERMISSIONS.get(perm)
        if action is None or not isinstance(obj, App):
            return False
        return can(user_obj, action, obj)

    def get_user(self, user_id: Any) -> None:
        return None
