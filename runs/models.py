from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_HUMAN = "waiting_human"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


ACTIVE_STATUSES = [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING_HUMAN]
TERMINAL_STATUSES = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT]


class Session(models.Model):
    """A conversation: runs of one app by one user, at most one of them active at a time."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sessions")
    app = models.ForeignKey("agents.App", on_delete=models.PROTECT, related_name="sessions")
    project = models.ForeignKey(
        "agents.Project",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sessions",
        db_index=False,  # a partial index (Meta): most sessions have no project
    )
    title = models.CharField(max_length=200, blank=True)
    queued_runs = models.BooleanField(
        default=False, help_text="A run was once queued behind another here (finishing a run looks for it)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["project"], name="runs_session_project_idx", condition=Q(project__isnull=False)
            )
        ]

    def __str__(self) -> str:
        return self.title or str(self.id)


class RunQuerySet(models.QuerySet["Run"]):
    def visible_to(self, user) -> RunQuerySet:
        """Runs the user may read: their own, and every run of the apps where they hold ``run.view_all``."""
        from agents.access import apps_for
        from agents.models import Action

        if user.is_superuser:
            return self
        return self.filter(Q(user_id=user.pk or 0) | Q(app__in=apps_for(user, Action.RUN_VIEW_ALL)))

    def owned_by(self, user) -> RunQuerySet:
        """Runs the user may act on (cancel, answer): their own; a superuser's, every run."""
        if user.is_superuser:
            return self
        return self.filter(user_id=user.pk or 0)

    def active(self) -> RunQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)


class Run(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="runs")
    app = models.ForeignKey("agents.App", on_delete=models.PROTECT, related_name="runs")
    executor = models.ForeignKey("agents.Executor", on_delete=models.PROTECT, related_name="runs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runs")
    project = models.ForeignKey(
        "agents.Project",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runs",
        db_index=False,  # a partial index (Meta): most runs have no project
    )
    # No index: every insert of a run would pay for one, and versions are never deleted (the PROTECT check
    # that would scan for a version's runs never runs). A page listing a version's runs filters by app too.
    prompt_version = models.ForeignKey(
        "agents.PromptVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runs",
        db_index=False,
        help_text="The prompt the run started with; empty: the app had none.",
    )
    settings = models.JSONField(
        default=dict,
        blank=True,
        help_text="The effective settings the run started with (secrets as their names only).",
    )
    input = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    error_class = models.CharField(max_length=50, blank=True)
    error_detail = models.TextField(blank=True)
    trace_id = models.CharField(max_length=32)
    idempotency_key = models.CharField(max_length=200, blank=True)
    last_seq = models.PositiveIntegerField(default=0, help_text="Seq of the last event stored here.")
    executor_seq = models.PositiveIntegerField(
        default=0, help_text="Seq of the last executor event consumed: the stream resumes after it."
    )
    attempts = models.PositiveIntegerField(
        default=0,
        help_text="Times a worker took the run up: its queue entry's count, copied at each attempt.",
    )
    cancel_requested = models.BooleanField(default=False)
    asked_human = models.BooleanField(
        default=False, help_text="The run has asked a person at least once (finishing closes its questions)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Past it the run ends timed_out; moved on by time spent waiting on a person.",
    )
    waiting_since = models.DateTimeField(
        null=True, blank=True, help_text="When the run began waiting on a person (while it does)."
    )
    synced_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker last heard from the executor for this run."
    )

    objects = RunQuerySet.as_manager()

    # Not a column: whether the run's session had queued runs, when a worker read it under the session's
    # row lock in the transaction that ended the run (runs.orchestrator.lock_for_write); None when unread.
    session_queued_runs: bool | None = None

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="runs_idempotency_key_per_user",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="runs_user_recent_idx"),
            models.Index(fields=["project"], name="runs_project_idx", condition=Q(project__isnull=False)),
            models.Index(fields=["session", "status"], name="runs_session_status_idx"),
            models.Index(fields=["status", "created_at"], name="runs_status_idx"),
            # A start counts the user's active runs (RUNS_MAX_ACTIVE_PER_USER): only those, however many
            # finished runs the user has.
            models.Index(
                fields=["user"], name="runs_active_user_idx", condition=Q(status__in=ACTIVE_STATUSES)
            ),
            # The reconciler's scans of active runs: past their deadline, stalled, stale.
            models.Index(
                fields=["deadline"], name="runs_active_deadline_idx", condition=Q(status__in=ACTIVE_STATUSES)
            ),
            models.Index(
                fields=["synced_at"], name="runs_active_synced_idx", condition=Q(status__in=ACTIVE_STATUSES)
            ),
            models.Index(
                fields=["finished_at"], name="runs_finished_idx", condition=Q(finished_at__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.app_id} run {self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class RunEvent(models.Model):
    """The single source of truth for a run's stream, its SSE ids and replay: seq is contiguous from 1."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=50)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="runs_event_seq_unique")]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq} {self.type}"


class TodoStatus(models.TextChoices):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class Todo(models.Model):
    """Projection of the run's latest ``todo.update``."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="todos")
    todo_id = models.CharField(max_length=100)
    title = models.CharField(max_length=500)
    status = models.CharField(max_length=20, choices=TodoStatus.choices, default=TodoStatus.PENDING)
    position = models.PositiveIntegerField(default=0)
    updated_seq = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "todo_id"], name="runs_todo_unique")]

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"


class HumanLoopStatus(models.TextChoices):
    PENDING = "pending"
    ANSWERED = "answered"
    DELIVERED = "delivered"
    CLOSED = "closed"


class HumanLoopRequest(models.Model):
    """Projection of ``human_loop.request`` / ``human_loop.reply``: a question the agent asked a person."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="human_requests")
    external_id = models.CharField(max_length=100, help_text="The executor's request_id.")
    question = models.TextField()
    options = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=HumanLoopStatus.choices, default=HumanLoopStatus.PENDING)
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    request_seq = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["run", "external_id"], name="runs_hl_request_unique")]
        indexes = [models.Index(fields=["status", "run"], name="runs_hl_status_idx")]

    def __str__(self) -> str:
        return self.question[:80]
