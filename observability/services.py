"""Writes of the observability app."""

from __future__ import annotations

from datetime import timedelta

import structlog
from django.db import DatabaseError
from django.utils import timezone

from observability.models import ReconcilerHeartbeat

logger = structlog.get_logger(__name__)

# A reconciler that has not finished a pass for this long is gone (stopped, or its host replaced).
HEARTBEAT_FORGET_AFTER = timedelta(days=1)


def heartbeat_record(*, owner: str, passes: int) -> bool:
    """The reconciler ``owner`` finished a pass: one upsert of its row, and the rows of reconcilers gone for
    ``HEARTBEAT_FORGET_AFTER`` deleted. Never raises on a database error (the pass is done; the next one
    tries again); returns whether it was recorded."""
    now = timezone.now()
    row = ReconcilerHeartbeat(owner=owner, last_pass_at=now, passes=passes)
    try:
        ReconcilerHeartbeat.objects.bulk_create(
            [row], update_conflicts=True, unique_fields=["owner"], update_fields=["last_pass_at", "passes"]
        )
        ReconcilerHeartbeat.objects.filter(last_pass_at__lt=now - HEARTBEAT_FORGET_AFTER).delete()
    except DatabaseError as exc:
        logger.warning("reconcile_heartbeat_failed", error=str(exc)[:300])
        return False
    return True
