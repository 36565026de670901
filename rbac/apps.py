from typing import Any

from django.apps import AppConfig


def _token_label(token: Any) -> str:
    return f"API token of user #{token.user_id}"


class RbacConfig(AppConfig):
    name = "rbac"
    verbose_name = "Access control"

    def ready(self) -> None:
        from rest_framework.authtoken.models import Token

        from rbac import audit

        audit.register()

        # DRF's Token.__str__ is the key itself, and Django renders str(obj) wherever it names an object:
        # the admin's titles, messages and delete confirmations (a user's page lists "Token: <key>"), the
        # admin log's object_repr (stored), repr() in shells and logs. A label without the key everywhere.
        Token.__str__ = _token_label  # type: ignore[method-assign]
