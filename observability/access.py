"""Who may open the operators' pages (the dashboard, agent status, the health summary, trace lists)."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from core.errors import NotFound
from observability.models import OperatorAction, OperatorGrant
from rbac.selectors import role_ids_held


def may_view_dashboard(user) -> bool:
    """Staff and superusers, and holders of a role with a ``dashboard.view`` grant."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return OperatorGrant.objects.filter(
        action=OperatorAction.DASHBOARD_VIEW, role_id__in=role_ids_held(user)
    ).exists()


class OperatorsOnly(BasePermission):
    """For the operators' API: anyone else gets a 404, as if the endpoint did not exist for them (after
    ``IsAuthenticated``, so an anonymous call is still a 401)."""

    def has_permission(self, request, view) -> bool:
        if not may_view_dashboard(request.user):
            raise NotFound()
        return True
