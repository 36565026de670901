"""Who may do what with which app: grants on roles (``AppGrant``) over the roles a user holds now.

``apps_for(user, action)`` is the one rule, as one SQL statement (an ``EXISTS`` over the grants of the
user's roles, the roles themselves a subquery: ``rbac.selectors.role_ids_held``); everything else rides on
it. Grants only add. Superusers may do everything, disabled apps included; nobody else sees a disabled app.
"""

from __future__ import annotations

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from agents.models import Action, App, AppGrant
from rbac.selectors import role_ids_held

# The grants that give an action: seeing an app follows from any grant on it.
GIVEN_BY: dict[str, tuple[str, ...]] = {
    Action.SEE: tuple(Action.values),
    Action.USE: (Action.USE,),
    Action.PROMPT_EDIT: (Action.PROMPT_EDIT,),
    Action.CONFIGURE: (Action.CONFIGURE,),
    Action.RUN_VIEW_ALL: (Action.RUN_VIEW_ALL,),
}

# Django permission codenames (``user.has_perm("agents.use_app", app)``) and the actions they stand for.
PERMISSIONS: dict[str, str] = {
    "agents.see_app": Action.SEE,
    "agents.use_app": Action.USE,
    "agents.edit_prompt": Action.PROMPT_EDIT,
    "agents.configure_app": Action.CONFIGURE,
    "agents.view_all_runs": Action.RUN_VIEW_ALL,
}


def grants_for(user, action: str) -> QuerySet[AppGrant]:
    """The grants through which ``user`` may do ``action`` (on some app or on all of them)."""
    return AppGrant.objects.filter(action__in=GIVEN_BY[action], role_id__in=role_ids_held(user))


def apps_for(user, action: str) -> QuerySet[App]:
    """The apps ``user`` may do ``action`` on, as one statement."""
    if action not in GIVEN_BY:
        raise ValueError(f"unknown app action {action!r}")
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return App.objects.none()
    if user.is_superuser:
        return App.objects.all()
    granted = grants_for(user, action).filter(Q(app_id=OuterRef("pk")) | Q(app__isnull=True))
    return App.objects.filter(Exists(granted), enabled=True)


def store_apps_for(user) -> QuerySet[App]:
    """The apps ``user`` may see, each annotated with ``usable`` (may start runs), in one statement."""
    apps = apps_for(user, Action.SEE)
    if user.is_superuser:
        return apps.annotate(usable=F("enabled"))
    usable = grants_for(user, Action.USE).filter(Q(app_id=OuterRef("pk")) | Q(app__isnull=True))
    return apps.annotate(usable=Exists(usable))


def can(user, action: str, app: App) -> bool:
    """Whether ``user`` may do ``action`` on ``app``: ``apps_for`` narrowed to it (one query)."""
    if getattr(user, "is_superuser", False) and user.is_active:
        return True
    return apps_for(user, action).filter(pk=app.pk).exists()


def actions_on(user, app: App) -> set[str]:
    """Every action ``user`` may do on ``app``, in one query."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    if user.is_superuser:
        return set(Action.values)
    if not app.enabled:
        return set()
    held = grants_for(user, Action.SEE).filter(Q(app=app) | Q(app__isnull=True))
    direct = set(held.values_list("action", flat=True).distinct())
    return direct | ({Action.SEE} if direct else set())


def access_explained(user) -> list[dict]:
    """What ``user`` sees in the store (``store_apps_for``), each app with the bindings and grants it
    comes through (role → grant → app); three queries, whatever the number of apps."""
    from rbac.selectors import bindings_held

    apps = list(store_apps_for(user).order_by("name", "pk"))
    bindings = list(bindings_held(user).select_related("role", "user", "department"))
    by_role: dict[int, list] = {}
    for binding in bindings:
        by_role.setdefault(binding.role_id, []).append(binding)
    grants = list(AppGrant.objects.filter(role_id__in=by_role).select_related("role", "app"))
    rows = []
    for app in apps:
        via = [
            (binding, grant)
            for grant in grants
            if grant.app_id in (None, app.pk)
            for binding in by_role[grant.role_id]
        ]
        rows.append({"app": app, "usable": app.usable, "via": via})  # type: ignore[attr-defined]
    return rows
