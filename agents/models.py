from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from agents.plugins import registry

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


class Glyph(models.TextChoices):
    """Built-in icons an app can show instead of an uploaded image (drawn by the portal)."""

    BOT = "bot", "Robot"
    CHAT = "chat", "Speech bubble"
    CODE = "code", "Code"
    CHART = "chart", "Chart"
    SEARCH = "search", "Magnifier"
    DOCUMENT = "document", "Document"
    SPARK = "spark", "Spark"
    SHIELD = "shield", "Shield"


def validate_labels(value: object) -> None:
    """A short list of short, distinct labels (tags, plugin names)."""
    if not isinstance(value, list) or len(value) > 20:
        raise ValidationError("Enter a JSON list of at most 20 labels.")
    for label in value:
        if not isinstance(label, str) or not 1 <= len(label) <= 50 or label != label.strip():
            raise ValidationError("Each label is a string of 1 to 50 characters without outer spaces.")
    if len(set(value)) != len(value):
        raise ValidationError("Labels must be distinct.")


def validate_plugins(value: object) -> None:
    """Labels, each the name of a plugin this process has enabled (``manage.py plugins`` lists them)."""
    validate_labels(value)
    loaded = registry.plugins()
    unknown = [name for name in value if name not in loaded] if isinstance(value, list) else []
    if unknown:
        offered = ", ".join(sorted(loaded)) or "none (PLUGINS_ENABLED is empty)"
        raise ValidationError(f"Not an enabled plugin: {', '.join(unknown)}. Enabled: {offered}.")


ICON_FORMATS = {"PNG", "JPEG", "GIF", "WEBP"}
ICON_MAX_BYTES = 256 * 1024


def validate_icon(value) -> None:
    """A small raster image in a format every browser shows (no SVG: it can carry scripts)."""
    from PIL import Image, UnidentifiedImageError

    if value.size > ICON_MAX_BYTES:
        raise ValidationError(f"The icon takes {value.size} bytes; at most {ICON_MAX_BYTES} are allowed.")
    try:
        value.seek(0)
        with Image.open(value) as image:
            image_format = image.format
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError("The icon is not an image Pillow can read.") from None
    finally:
        value.seek(0)
    if image_format not in ICON_FORMATS:
        raise ValidationError(f"Upload a PNG, JPEG, GIF or WebP image (this one is {image_format}).")


def validate_settings_schema(value: object) -> None:
    from agents.settings_schema import check_schema

    check_schema(value)


class App(models.Model):
    """An app-store entry: an agent people can start runs of."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    icon = models.ImageField(
        upload_to="app-icons/",
        blank=True,
        validators=[validate_icon],
        help_text="PNG, JPEG, GIF or WebP, at most 256 KiB; empty: the glyph.",
    )
    glyph = models.CharField(max_length=20, choices=Glyph.choices, default=Glyph.BOT)
    category = models.CharField(max_length=50, blank=True)
    tags = models.JSONField(default=list, blank=True, validators=[validate_labels])
    plugins = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_plugins],
        help_text="Plugins its agent may call through the tool gateway (names; a JSON list).",
    )
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
    active_prompt = models.ForeignKey(
        "PromptVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        help_text="The version new runs start with; moved only by an activation (agents.prompts).",
    )
    settings_schema = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_settings_schema],
        help_text='JSON Schema of the app\'s settings; a property with "writeOnly": true is a secret.',
    )
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
        permissions = [
            ("see_app", "Can see the app in the store"),
            ("use_app", "Can start runs of the app"),
            ("edit_prompt", "Can save and activate the app's prompt versions"),
            ("configure_app", "Can change the app's default and project settings"),
            ("view_all_runs", "Can read everyone's runs of the app"),
        ]

    def __str__(self) -> str:
        return self.name

    def agent_spec(self) -> dict[str, str]:
        spec = {"kind": self.agent_kind}
        if self.agent_kind == AgentKind.SCRIPTED:
            spec["playbook"] = self.playbook or "demo"
        return spec


class Action(models.TextChoices):
    """What a grant allows on an app. Grants only add; ``app.see`` follows from any other action."""

    SEE = "app.see", "See the app"
    USE = "app.use", "Start runs"
    PROMPT_EDIT = "prompt.edit", "Save and activate prompt versions"
    CONFIGURE = "app.configure", "Change default and project settings"
    RUN_VIEW_ALL = "run.view_all", "Read everyone's runs"


class AppGrant(models.Model):
    """Holders of ``role`` may do ``action`` on ``app`` (on every app when it is empty)."""

    role = models.ForeignKey("rbac.Role", on_delete=models.CASCADE, related_name="app_grants")
    action = models.CharField(max_length=30, choices=Action.choices)
    app = models.ForeignKey(
        App,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="grants",
        help_text="Empty: every app.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["role", "action"]
        constraints = [
            models.UniqueConstraint(
                fields=["role", "action", "app"],
                condition=Q(app__isnull=False),
                name="agents_grant_unique",
                violation_error_message="This role already has this grant on this app.",
            ),
            models.UniqueConstraint(
                fields=["role", "action"],
                condition=Q(app__isnull=True),
                name="agents_grant_all_apps_unique",
                violation_error_message="This role already has this grant on every app.",
            ),
        ]
        indexes = [models.Index(fields=["role", "action"], name="agents_grant_role_idx")]

    def __str__(self) -> str:
        return f"{self.role}: {self.action} on {self.app or 'every app'}"


class PromptVersion(models.Model):
    """One saved version of an app's prompt: numbered 1..n per app, never changed once saved."""

    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="prompt_versions")
    number = models.PositiveIntegerField()
    text = models.TextField()
    parameters = models.JSONField(default=dict, blank=True)
    message = models.CharField(max_length=500, blank=True, help_text="What changed, for the history.")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["app", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["app", "number"], name="agents_prompt_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.app_id} v{self.number}"


class PromptActivation(models.Model):
    """A move of an app's active prompt: to which version, from which, by whom and why (append-only)."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="prompt_activations")
    version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="activations")
    previous = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["app", "-created_at", "-id"]
        indexes = [models.Index(fields=["app", "-created_at"], name="agents_activation_app_idx")]

    def __str__(self) -> str:
        return f"{self.app_id} → v{self.version.number}"


class Project(models.Model):
    """A named workspace owned by a department: it groups runs and carries its own app settings."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    department = models.ForeignKey(
        "rbac.Department",
        on_delete=models.PROTECT,
        related_name="projects",
        help_text="Its owner: members of this department and of those below it work in it.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SettingScope(models.TextChoices):
    APP = "app", "App default"
    PROJECT = "project", "Project"
    USER = "user", "User"


class AppSetting(models.Model):
    """An app's settings at one scope; a run starts with app default < project < user, merged."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="setting_layers")
    scope = models.CharField(max_length=10, choices=SettingScope.choices)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="app_settings"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="app_settings",
    )
    values = models.JSONField(default=dict, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["app", "scope"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(scope="app") & Q(project__isnull=True) & Q(user__isnull=True))
                | (Q(scope="project") & Q(project__isnull=False) & Q(user__isnull=True))
                | (Q(scope="user") & Q(project__isnull=True) & Q(user__isnull=False)),
                name="agents_setting_scope_subject",
            ),
            models.UniqueConstraint(
                fields=["app"], condition=Q(scope="app"), name="agents_setting_app_unique"
            ),
            models.UniqueConstraint(
                fields=["app", "project"], condition=Q(scope="project"), name="agents_setting_project_unique"
            ),
            models.UniqueConstraint(
                fields=["app", "user"], condition=Q(scope="user"), name="agents_setting_user_unique"
            ),
        ]

    def __str__(self) -> str:
        subject = self.project or self.user or "default"
        return f"{self.app_id} settings ({self.scope}: {subject})"


class AgentState(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    IDLE = "idle", "Idle"
    BUSY = "busy", "Busy"
    WAITING_INPUT = "waiting_input", "Waiting for input"
    ERROR = "error", "Error"
    OFFLINE = "offline", "Offline"


class ExecutorHealth(models.Model):
    """What the agent-status monitor last learnt of an executor: whether it answered, and how many polls in
    a row it has not (its agents turn ``offline`` after ``AGENT_STATUS_DEBOUNCE`` of them)."""

    executor = models.OneToOneField(Executor, on_delete=models.CASCADE, related_name="health")
    up = models.BooleanField(default=False)
    failed_polls = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text="Last poll it answered.")

    class Meta:
        verbose_name_plural = "executor health"

    def __str__(self) -> str:
        return f"{self.executor} ({'up' if self.up else 'down'})"


class AgentStatus(models.Model):
    """The debounced state of one agent on one executor (``GET /v1/agents``): ``state`` changes only after
    ``AGENT_STATUS_DEBOUNCE`` equal observations in a row (``pending_state``, ``pending_count``)."""

    executor = models.ForeignKey(Executor, on_delete=models.CASCADE, related_name="agent_statuses")
    agent_id = models.CharField(max_length=200)
    app = models.CharField(max_length=100, blank=True, help_text="The app's slug, as the executor names it.")
    state = models.CharField(max_length=20, choices=AgentState.choices, default=AgentState.UNKNOWN)
    detail = models.CharField(max_length=300, blank=True)
    since = models.DateTimeField(help_text="When the current state was taken.")
    observed_at = models.DateTimeField(help_text="The last poll that saw this agent (or its executor down).")
    pending_state = models.CharField(max_length=20, choices=AgentState.choices, blank=True)
    pending_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["executor", "agent_id"]
        verbose_name_plural = "agent statuses"
        constraints = [
            models.UniqueConstraint(fields=["executor", "agent_id"], name="agents_status_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} on {self.executor_id}: {self.state}"


class AgentStatusChange(models.Model):
    """The history: one row per change of an agent's stored state (append-only)."""

    status = models.ForeignKey(AgentStatus, on_delete=models.CASCADE, related_name="changes")
    previous = models.CharField(max_length=20, choices=AgentState.choices)
    state = models.CharField(max_length=20, choices=AgentState.choices)
    detail = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["status", "-at"], name="agents_status_change_at")]

    def __str__(self) -> str:
        return f"{self.previous} → {self.state} at {self.at:%Y-%m-%d %H:%M:%S}"
