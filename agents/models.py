from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

DEFAULT_EXECUTOR_NAME = "default"


def validate_base_url(value: str) -> None:
    """An http(s) URL. Django's URLValidator wants a dotted domain, but executors inside a compose network
    or a cluster are reached by bare service names such as ``http://executor:8100``."""
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        raise ValidationError("The port is not a number from 0 to 65535.") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.username or parts.query:
        raise ValidationError("Enter an http(s) URL such as http://executor:8100 (no credentials or query).")


class Executor(models.Model):
    """An executor service the control plane drives runs on, over protocol v1 (docs/executor-protocol.md).

    The token is stored because every call must present it, and is never rendered back: the admin form
    takes a new one write-only and lists only whether one is set.
    """

    name = models.SlugField(max_length=100, unique=True)
    base_url = models.CharField(
        max_length=500, validators=[validate_base_url], help_text="e.g. http://executor:8100"
    )
    token = models.CharField(max_length=500, blank=True)
    connect_timeout_s = models.FloatField(
        default=5.0, validators=[MinValueValidator(0.1), MaxValueValidator(300)]
    )
    read_timeout_s = models.FloatField(
        default=30.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(3600)],
        help_text="Also the longest silence tolerated on an event stream: keep it above the executor's "
        "keep-alive interval.",
    )
    retries = models.PositiveSmallIntegerField(
        default=3, validators=[MaxValueValidator(10)], help_text="Retries of a call on network errors, 5xx."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_token(self) -> bool:
        return bool(self.token)


class AgentKind(models.TextChoices):
    SCRIPTED = "scripted", "Scripted playbook (reference executor)"
    OPENAI = "openai", "OpenAI-compatible model"


class App(models.Model):
    """An app-store entry: an agent people can start runs of."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    executor = models.ForeignKey(
        Executor,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="apps",
        help_text="Where its runs go; empty means the default executor.",
    )
    agent_kind = models.CharField(max_length=20, choices=AgentKind.choices, default=AgentKind.SCRIPTED)
    playbook = models.CharField(max_length=100, blank=True, help_text="For scripted agents: which playbook.")
    system_prompt = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    run_deadline_s = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Seconds a run may take (time waiting on a person excluded); empty: RUN_DEADLINE_S.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def agent_spec(self) -> dict[str, str]:
        spec = {"kind": self.agent_kind}
        if self.agent_kind == AgentKind.SCRIPTED:
            spec["playbook"] = self.playbook or "demo"
        return spec

    def prompt_for_executor(self) -> dict[str, object]:
        return {"version": 0, "text": self.system_prompt}
