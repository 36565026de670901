"""The audit of the tool gateway: one row per call, whatever became of it."""

from __future__ import annotations

from django.db import models


class Outcome(models.TextChoices):
    OK = "ok"
    REFUSED = "refused"  # the token, the whitelist, the app's declaration or the run's state said no
    INVALID = "invalid"  # the arguments (or the body) did not fit the plugin's schema
    RATE_LIMITED = "rate_limited"
    ERROR = "error"  # the plugin failed: an error it explained, a bad result, or an exception
    TIMEOUT = "timeout"


class PluginCall(models.Model):
    """A call to the gateway. Written once, after the call, in autocommit (never inside a transaction a
    failure could roll back); never changed. ``run`` is the run the request named, kept without a foreign
    key constraint: a call naming a run that does not exist is recorded too, and audit rows outlive runs."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(db_index=True)
    run = models.ForeignKey(
        "runs.Run",
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="plugin_calls",
    )
    app_slug = models.CharField(max_length=100, blank=True)
    plugin = models.CharField(max_length=100)
    call_id = models.CharField(max_length=200, blank=True, help_text="The executor's id for the call.")
    arguments = models.JSONField(default=dict, blank=True, help_text="Secrets redacted; long ones cut.")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    status = models.PositiveSmallIntegerField(help_text="The HTTP status the gateway answered.")
    error_code = models.CharField(max_length=100, blank=True)
    error_class = models.CharField(max_length=200, blank=True, help_text="The exception's class, if any.")
    error_message = models.TextField(blank=True)
    duration_ms = models.FloatField(help_text="The whole call, as the gateway saw it.")
    plugin_ms = models.FloatField(null=True, blank=True, help_text="The plugin's own time.")
    request_bytes = models.PositiveIntegerField(default=0)
    response_bytes = models.PositiveIntegerField(default=0)
    trace_id = models.CharField(max_length=32, blank=True)
    span_id = models.CharField(max_length=16, blank=True)
    request_id = models.CharField(max_length=100, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["run", "created_at"], name="gateway_call_run_idx"),
            models.Index(fields=["plugin", "created_at"], name="gateway_call_plugin_idx"),
            models.Index(fields=["outcome", "created_at"], name="gateway_call_outcome_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.plugin} {self.outcome} ({self.created_at:%Y-%m-%d %H:%M:%S})"
