"""Which roots a user may open, and what their roles grant under one (each one query)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet

from files.models import FileACL, FileRoot, Permission
from rbac.selectors import role_ids_held

Parts = tuple[str, ...]


def _covers(prefix: Parts, parts: Parts) -> bool:
    return parts[: len(prefix)] == prefix


@dataclass(frozen=True)
class Grants:
    """What a user's roles grant under one root, as path prefixes (whole components). ``read`` implies
    ``list``; the directories above a granted prefix may be opened to reach it, and show only the way."""

    everything: bool
    listable: tuple[Parts, ...]
    readable: tuple[Parts, ...]

    @property
    def any(self) -> bool:
        return self.everything or bool(self.listable)

    def can_list(self, parts: Parts) -> bool:
        return self.everything or any(_covers(prefix, parts) for prefix in self.listable)

    def can_read(self, parts: Parts) -> bool:
        return self.everything or any(_covers(prefix, parts) for prefix in self.readable)

    def can_reach(self, parts: Parts) -> bool:
        """Listed, or a directory on the way to something listed."""
        return self.can_list(parts) or any(_covers(parts, prefix) for prefix in self.listable)


EVERYTHING = Grants(everything=True, listable=((),), readable=((),))


def _acls_of(user) -> QuerySet[FileACL]:
    return FileACL.objects.filter(role_id__in=role_ids_held(user))


def roots_for(user) -> QuerySet[FileRoot]:
    """The enabled roots ``user`` holds any ACL on (superusers: every enabled root)."""
    roots = FileRoot.objects.filter(enabled=True)
    if user.is_superuser:
        return roots
    return roots.filter(Exists(_acls_of(user).filter(root_id=OuterRef("pk"))))


def root_by_name(name: str) -> FileRoot | None:
    return FileRoot.objects.filter(name=name, enabled=True).first()


def grants_on(user, root: FileRoot) -> Grants:
    if user.is_superuser:
        return EVERYTHING
    rows = _acls_of(user).filter(root=root).values_list("path_prefix", "permission")
    listable, readable = set(), set()
    for prefix, permission in rows:
        parts = tuple(prefix.split("/")) if prefix else ()
        listable.add(parts)
        if permission == Permission.READ:
            readable.add(parts)
    return Grants(everything=False, listable=tuple(listable), readable=tuple(readable))
