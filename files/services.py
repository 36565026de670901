"""Writes of the files domain (the audit is written by ``files.audit``)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from files.models import FileRoot


@transaction.atomic
def roots_sync_from_settings(*, declared: dict[str, str] | None = None) -> list[FileRoot]:
    """Create or update the roots ``FILE_ROOTS`` declares (their path and ``from_settings``); a root that
    was declared and no longer is stays, disabled, with its ACLs (re-declaring it enables it again)."""
    declared = settings.FILE_ROOTS if declared is None else declared
    synced = []
    for name, path in declared.items():
        root, _ = FileRoot.objects.update_or_create(
            name=name, defaults={"path": path, "from_settings": True, "enabled": True}
        )
        synced.append(root)
    FileRoot.objects.filter(from_settings=True).exclude(name__in=declared).update(enabled=False)
    return synced
