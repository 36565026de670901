"""Baseline: the per-row Django ORM worker (select_for_update(skip_locked) + two saves per job)."""

import os
import sys
import uuid
from datetime import timedelta

import django

# This folder holds bench/queue.py, which would shadow the standard library's `queue`: use the project root.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
django.setup()

from django.db import transaction
from django.utils import timezone

from run_queue.models import QueueEntry, State


def main() -> None:
    while True:
        with transaction.atomic():
            entry = (
                QueueEntry.objects.select_for_update(skip_locked=True)
                .filter(state=State.READY)
                .order_by("-priority", "available_at")
                .first()
            )
            if entry is None:
                return
            entry.state = State.LEASED
            entry.attempts += 1
            entry.lease_token = uuid.uuid4()
            entry.lease_expires_at = timezone.now() + timedelta(seconds=30)
            entry.save(update_fields=["state", "attempts", "lease_token", "lease_expires_at", "updated_at"])
        entry.state = State.DONE
        entry.finished_at = timezone.now()
        entry.lease_token = entry.lease_expires_at = None
        entry.save(update_fields=["state", "finished_at", "lease_token", "lease_expires_at", "updated_at"])


if __name__ == "__main__":
    main()
