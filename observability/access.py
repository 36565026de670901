"""Who may open the operators' pages (the dashboard, agent status, the health summary, trace lists)."""

from __future__ import annotations

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
