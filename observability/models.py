"""Spans (the trace store behind the dashboard) and the grants that open the operators' pages."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SpanKind(models.TextChoices):
    INTERNAL = "internal", "Internal"
    SERVER = "server", "Server"
    CLIENT = "client", "Client"
    PRODUCER = "producer", "Producer"
    CONSUMER = "consumer", "Consumer"


class SpanStatus(models.TextChoices):
    UNSET = "unset", "Unset"
    OK = "ok", "OK"
    ERROR = "error", "Error"


class Span(models.Model):
    """One finished OpenTelemetry span, written in batches by ``observability.tracing.TableSpanExporter``.

    Append-only and pruned by the reconciler after ``TRACE_RETENTION_DAYS``. Ids are the W3C hex forms
    (32 and 16 characters), as in a ``traceparent`` header and in the logs.
    """

    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    parent_id = models.CharField(max_length=16, blank=True, default="")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=SpanKind.choices, default=SpanKind.INTERNAL)
    start = models.DateTimeField()
    end = models.DateTimeField()
    duration_us = models.BigIntegerField()
    status = models.CharField(max_length=5, choices=SpanStatus.choices, default=SpanStatus.UNSET)
    status_message = models.TextField(blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    process = models.CharField(max_length=200, help_text="Which process recorded it: role@host:pid.")

    class Meta:
        ordering = ["start"]
        indexes = [
            models.Index(fields=["trace_id", "start"], name="obs_span_trace"),
            models.Index(fields=["start"], name="obs_span_start"),
            # /metrics counts the failed executor calls of late: only failed spans are indexed here, so a
            # scrape reads those, not every span of the window.
            models.Index(fields=["start"], name="obs_span_error_idx", condition=models.Q(status="error")),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.trace_id[:8]}…/{self.span_id})"


class OperatorAction(models.TextChoices):
    DASHBOARD_VIEW = "dashboard.view", "See the operators' dashboard and traces"


class OperatorGrant(models.Model):
    """Holders of ``role`` may do ``action`` on the operators' pages (staff may without a grant)."""

    role = models.ForeignKey("rbac.Role", on_delete=models.CASCADE, related_name="operator_grants")
    action = models.CharField(max_length=30, choices=OperatorAction.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["role", "action"]
        constraints = [
            models.UniqueConstraint(
                fields=["role", "action"],
                name="obs_operator_grant_unique",
                violation_error_message="This role already has this grant.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.role} may {self.action}"


class ReconcilerHeartbeat(models.Model):
    """When each reconciler last finished a pass (one row per owner, upserted at the end of every pass):
    the health summary and ``/metrics`` report the most recent. Rows of owners silent for
    ``HEARTBEAT_FORGET_AFTER`` are pruned by the next pass of any reconciler."""

    owner = models.CharField(max_length=200, unique=True, help_text="reconciler:host:pid:suffix")
    last_pass_at = models.DateTimeField()
    passes = models.PositiveBigIntegerField(default=0, help_text="Passes this reconciler has finished.")

    class Meta:
        ordering = ["-last_pass_at"]

    def __str__(self) -> str:
        return f"{self.owner} at {self.last_pass_at:%Y-%m-%d %H:%M:%S}"
