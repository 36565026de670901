"""What every portal page's header shows: who is signed in, their department, the navigation."""

from __future__ import annotations

from django.http import HttpRequest

from portal.nav import nav_for


def header(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav": nav_for(user), "department": _department_name(user)}


def _department_name(user) -> str:
    # A person may belong to several departments: the header names the first by name, the rest are a title.
    names = list(user.departments.order_by("name").values_list("name", flat=True)[:3])
    return " · ".join(names)
