"""Which roles a user holds now, and the department tree, each as one SQL statement.

The tree is walked in SQL (``WITH RECURSIVE``, PostgreSQL and SQLite alike), never in Python: a deeper tree
costs no extra query. The roles come back as a subquery (``RawSQL``) so a domain filters its grants with
``role_id__in=role_ids_held(user)`` inside its own statement.
"""

from __future__ import annotations

from django.db import connection, models
from django.db.models.expressions import RawSQL
from django.utils import timezone

from rbac.models import Department, RoleBinding

# A department's chain of parents is cut here: the admin refuses cycles, this keeps a hand-made one finite.
MAX_DEPTH = 64

_DEPARTMENT = Department._meta.db_table
_MEMBERS = Department.members.through._meta.db_table
_BINDING = RoleBinding._meta.db_table

# The user's own departments (depth 0) and all their ancestors (depth > 0); a binding on an ancestor
# reaches the user only when it includes descendants.
_UP_FROM_USER_CTE = f"""
WITH RECURSIVE up(id, depth) AS (
    SELECT m.department_id, 0 FROM {_MEMBERS} m WHERE m.user_id = %s
  UNION
    SELECT d.parent_id, up.depth + 1 FROM {_DEPARTMENT} d JOIN up ON d.id = up.id
    WHERE d.parent_id IS NOT NULL AND up.depth < {MAX_DEPTH}
)"""  # noqa: S608
_HELD_WHERE = f"""
SELECT b.{{column}} FROM {_BINDING} b
WHERE (b.expires_at IS NULL OR b.expires_at > %s)
  AND (b.user_id = %s
       OR b.department_id IN (SELECT id FROM up WHERE depth = 0)
       OR (b.include_descendants AND b.department_id IN (SELECT id FROM up WHERE depth > 0)))
"""  # noqa: S608 -- table names from the models' metadata, values bound as parameters
_HELD_SQL = _UP_FROM_USER_CTE + _HELD_WHERE

_SUBTREE_SQL = f"""
WITH RECURSIVE down(id, depth) AS (
    SELECT id, 0 FROM {_DEPARTMENT} WHERE id = %s
  UNION
    SELECT d.id, down.depth + 1 FROM {_DEPARTMENT} d JOIN down ON d.parent_id = down.id
    WHERE down.depth < {MAX_DEPTH}
)
SELECT id FROM down
"""  # noqa: S608

_ANCESTORS_SQL = f"""
WITH RECURSIVE up(id, depth) AS (
    SELECT id, 0 FROM {_DEPARTMENT} WHERE id = %s
  UNION
    SELECT d.parent_id, up.depth + 1 FROM {_DEPARTMENT} d JOIN up ON d.id = up.id
    WHERE d.parent_id IS NOT NULL AND up.depth < {MAX_DEPTH}
)
SELECT id FROM up
"""  # noqa: S608


def _now_param() -> object:
    # As the backend stores datetimes (SQLite compares them as text): a raw parameter is not converted.
    return models.DateTimeField().get_db_prep_value(timezone.now(), connection)


def _held(user, column: str) -> RawSQL:
    user_id = getattr(user, "pk", None) or 0
    return RawSQL(_HELD_SQL.format(column=column), [user_id, _now_param(), user_id])  # noqa: S611


def role_ids_held(user) -> RawSQL:
    """The ids of the roles ``user`` holds now, as a subquery: bound to them directly, to one of their
    departments, or to an ancestor of one with ``include_descendants``; expired bindings left out."""
    return _held(user, "role_id")


def bindings_held(user) -> models.QuerySet[RoleBinding]:
    """The bindings through which ``user`` holds roles now (what the effective-access page explains)."""
    return RoleBinding.objects.filter(pk__in=_held(user, "id"))


def department_subtree_ids(department_id: int) -> set[int]:
    """``department_id`` and every department below it."""
    with connection.cursor() as cursor:
        cursor.execute(_SUBTREE_SQL, [department_id])
        return {row[0] for row in cursor.fetchall()}


_PATHS_SQL = f"""
WITH RECURSIVE up(start, id, depth) AS (
    SELECT id, id, 0 FROM {_DEPARTMENT} WHERE id IN ({{ids}})
  UNION
    SELECT up.start, d.parent_id, up.depth + 1 FROM {_DEPARTMENT} d JOIN up ON d.id = up.id
    WHERE d.parent_id IS NOT NULL AND up.depth < {MAX_DEPTH}
)
SELECT up.start, up.depth, d.name FROM up JOIN {_DEPARTMENT} d ON d.id = up.id
"""  # noqa: S608 -- only placeholders are formatted in


def department_paths(department_ids: list[int]) -> dict[int, list[str]]:
    """Each department's names from the root down to itself ("Acme", "Research", "ML"), in one query."""
    if not department_ids:
        return {}
    placeholders = ", ".join(["%s"] * len(department_ids))
    rows: dict[int, list[tuple[int, str]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_PATHS_SQL.format(ids=placeholders), list(department_ids))
        for start, depth, name in cursor.fetchall():
            rows.setdefault(start, []).append((depth, name))
    return {start: [name for _, name in sorted(chain, reverse=True)] for start, chain in rows.items()}


# The user's own departments and every department above them.
_UP_FROM_USER_SQL = _UP_FROM_USER_CTE + "\nSELECT id FROM up\n"


def department_ids_up_from(user) -> RawSQL:
    """The ids of ``user``'s departments and of every department above them, as a subquery: what the
    user belongs to, directly or through the tree (``Project.objects.filter(department_id__in=...)``)."""
    return RawSQL(_UP_FROM_USER_SQL, [getattr(user, "pk", None) or 0])  # noqa: S611


def is_member_at_or_above(user, department_id: int) -> bool:
    """Whether ``user`` is a member of the department or of one above it (one statement)."""
    through = Department.members.through
    above = RawSQL(_ANCESTORS_SQL, [department_id])  # noqa: S611
    return through.objects.filter(user_id=getattr(user, "pk", None) or 0, department_id__in=above).exists()
