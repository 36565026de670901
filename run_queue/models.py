from __future__ import annotations

import time
import uuid
from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone


class State(models.TextChoices):
    READY = "ready"
    LEASED = "leased"
    PARKED = "parked"
    DONE = "done"
    DEAD = "dead"


def lease_held_where(entry: QueueEntry) -> dict:
    """The lease condition, the one place it is spelled for the ORM: ``entry`` is still leased under the
    token it was claimed with. A worker whose lease moved on matches nothing, so it writes nothing."""
    return {"id": entry.pk, "state": State.LEASED, "lease_token": entry.lease_token}


def lease_held_sql(alias: str, *, id_sql: str = "%s", token_sql: str = "%s") -> str:  # noqa: S107
    """The same condition for statements written out (``id_sql`` and ``token_sql`` are placeholders or
    column references, never values)."""
    return f"{alias}.id = {id_sql} AND {alias}.state = 'leased' AND {alias}.lease_token = {token_sql}"


class QueueEntryQuerySet(models.QuerySet["QueueEntry"]):
    def ready(self) -> QueueEntryQuerySet:
        return self.filter(state=State.READY, available_at__lte=timezone.now())

    def expired(self) -> QueueEntryQuerySet:
        return self.filter(state=State.LEASED, lease_expires_at__lt=timezone.now())

    def held(self, lease_tokens: list[uuid.UUID]) -> QueueEntryQuerySet:
        return self.filter(state=State.LEASED, lease_token__in=lease_tokens)

    def finished_before(self, moment: datetime) -> QueueEntryQuerySet:
        return self.filter(state=State.DONE, finished_at__lt=moment)


class QueueEntry(models.Model):
    """One run's place in the queue. ``run_id`` is unique, so a run can never be queued twice.

    The queue knows nothing of runs: ``run_id`` is a plain UUID, not a foreign key, so ``run_queue``
    depends on no other app (the runs app creates and owns the entry in the run's own transaction).
    """

    run_id = models.UUIDField(unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.READY)
    priority = models.SmallIntegerField(default=0)
    available_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    wake_requested = models.BooleanField(
        default=False, help_text="Set when asked to unpark while leased: the worker's park then re-queues."
    )
    last_error_class = models.CharField(max_length=100, blank=True)
    last_error_detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = QueueEntryQuerySet.as_manager()

    # Not a column: when the handler holding this entry last showed progress (``time.monotonic()``). The
    # worker renews the lease only while this is recent, so a handler stuck for good lets its run go.
    progressed_at: float = 0.0
    stall_logged: bool = False

    class Meta:
        verbose_name_plural = "queue entries"
        indexes = [
            # The claim walks this index in order and stops after the batch: it stays an index scan
            # however many finished rows the table holds.
            models.Index(
                models.F("priority").desc(),
                "available_at",
                name="run_queue_ready_idx",
                condition=Q(state="ready"),
            ),
            models.Index(
                fields=["lease_expires_at"], name="run_queue_leased_idx", condition=Q(state="leased")
            ),
            models.Index(fields=["finished_at"], name="run_queue_done_idx", condition=Q(state="done")),
            models.Index(fields=["state", "updated_at"], name="run_queue_state_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state="leased", lease_token__isnull=False, lease_expires_at__isnull=False)
                | (~Q(state="leased") & Q(lease_token__isnull=True)),
                name="run_queue_lease_matches_state",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} ({self.state}, attempt {self.attempts}/{self.max_attempts})"

    def touch(self) -> None:
        """The handler made progress (it heard from its executor): keep the lease."""
        self.progressed_at = time.monotonic()
