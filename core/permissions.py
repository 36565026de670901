"""The policy API's rule: the admin's. A superuser, or an active staff member holding the Django model
permission of what the request does (``view_*`` for reads too, which DRF's class does not ask for)."""

from typing import Any

from rest_framework.permissions import DjangoModelPermissions


class AdminModelPermissions(DjangoModelPermissions):
    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if not (user.is_staff or user.is_superuser):
            return False
        return super().has_permission(request, view)
