"""Who may do what with which app: grants on roles (``AppGrant``) over the roles a user holds now.

``apps_for(user, action)`` is the one rule, as one SQL statement (the grants of the user's roles as
subqueries, the roles themselves one too: ``rbac.selectors.role_ids_held``); everything else rides on it.
Grants only add. Superusers may do everything, disabled apps included; nobody else sees a disabled app.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, Q, QuerySet, Value

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
    return App.objects.filter(_granted(grants_for(user, action)), enabled=True)


def _granted(grants: QuerySet[AppGrant]) -> Q:
    # Two uncorrelated subqueries, each run once per statement (an InitPlan and a hashed SubPlan on
    # PostgreSQL), not an EXISTS per app: correlated, it re-walked the user's roles for every app
    # (43 ms for a page of 50 in bench/rbac.py, against 8 ms for a superuser who skips the check).
    return Q(Exists(grants.filter(app__isnull=True))) | Q(pk__in=grants.exclude(app=None).values("app_id"))


def store_apps_for(user) -> QuerySet[App]:
    """The apps ``user`` may see, in one statement, each annotated with ``usable`` (may start runs),
    ``prompt_editable`` (``prompt.edit``) and ``all_runs_readable`` (``run.view_all``)."""
    apps = apps_for(user, Action.SEE)
    if user.is_superuser:
        return apps.annotate(usable=F("enabled"), prompt_editable=Value(True), all_runs_readable=Value(True))
    return apps.annotate(
        usable=_holds(user, Action.USE),
        prompt_editable=_holds(user, Action.PROMPT_EDIT),
        all_runs_readable=_holds(user, Action.RUN_VIEW_ALL),
    )


def _holds(user, action: str) -> ExpressionWrapper:
    # Each is the same pair of uncorrelated subqueries as apps_for's, run once per statement.
    return ExpressionWrapper(_granted(grants_for(user, action)), output_field=BooleanField())


def can(user, action: str, app: App) -> bool:
    """Whether ``user`` may do ``action`` on ``app``: ``apps_for`` narrowed to one app, in one query.

    Written out rather than built by the ORM: every run start asks it, and building the ``EXISTS`` cost
    more than running it. The rule is ``apps_for``'s (tests/agents/test_access.py holds them equal for
    every person, app and action); the app's ``enabled`` is read from its row, not from a cached copy.
    """
    if action not in GIVEN_BY:
        raise ValueError(f"unknown app action {action!r}")
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    held = role_ids_held(user)
    with connection.cursor() as cursor:
        cursor.execute(_CAN_SQL[action].format(held=held.sql), [app.pk, app.pk, *held.params])
        return cursor.fetchone() is not None


def _can_sql(action: str) -> str:
    # Literal actions, not parameters: the statement's text is one per action, so it is prepared once.
    actions = ", ".join(f"'{given}'" for given in GIVEN_BY[action])
    return (
        f"SELECT 1 FROM {App._meta.db_table} a WHERE a.id = %s AND a.enabled AND EXISTS ("  # noqa: S608
        f"SELECT 1 FROM {AppGrant._meta.db_table} g WHERE g.action IN ({actions})"
        " AND (g.app_id = %s OR g.app_id IS NULL) AND g.role_id IN ({held}))"
    )


_CAN_SQL = {action: _can_sql(action) for action in GIVEN_BY}


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
