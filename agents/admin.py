from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest

from agents import (
    admin_access,  # noqa: F401 - roles' grants, the grants, effective access
    admin_settings,  # noqa: F401 -- registers ProjectAdmin and AppSettingAdmin
    admin_status,  # noqa: F401 -- registers AgentStatusAdmin and ExecutorHealthAdmin
)
from agents.admin_prompts import NewPromptVersionInline, PromptVersionInline
from agents.models import DEFAULT_EXECUTOR_NAME, App, Executor
from agents.services import TOKEN_REQUIRED_FOR_NEW_URL


class ExecutorAdminForm(forms.ModelForm):
    """The token is write-only: the field never renders a value; leaving it blank keeps the stored one."""

    token = forms.CharField(
        required=False,
        strip=True,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the current token.",
    )
    clear_token = forms.BooleanField(required=False, help_text="Remove the stored token.")

    class Meta:
        model = Executor
        fields = [
            "name",
            "base_url",
            "token",
            "clear_token",
            "connect_timeout_s",
            "read_timeout_s",
            "retries",
            "enabled",
        ]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.initial.pop("token", None)  # never carried into the page, even as a hidden initial value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("clear_token"):
            cleaned["token"] = ""
        elif not cleaned.get("token"):
            self._refuse_new_url_for_stored_token()
            cleaned["token"] = self.instance.token if self.instance.pk else ""
        return cleaned

    def _refuse_new_url_for_stored_token(self) -> None:
        # The stored token goes with every call to base_url: whoever could repoint the URL without knowing
        # the token would receive it at their own host.
        if self.instance.pk and self.instance.token and "base_url" in self.changed_data:
            self.add_error("token", TOKEN_REQUIRED_FOR_NEW_URL)


@admin.register(Executor)
class ExecutorAdmin(admin.ModelAdmin):
    form = ExecutorAdminForm
    list_display = ["name", "base_url", "token_set", "enabled", "read_timeout_s", "retries", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["name", "base_url"]

    @admin.display(boolean=True, description="token set")
    def token_set(self, executor: Executor) -> bool:
        return executor.has_token

    @staticmethod
    def _mirrors_settings(obj: Executor | None) -> bool:
        # The default executor follows EXECUTOR_* while EXECUTOR_URL is set (agents.selectors):
        # edits here would be undone by the next run, so the admin shows it read-only.
        return obj is not None and obj.name == DEFAULT_EXECUTOR_NAME and bool(settings.EXECUTOR_URL)

    def _shows_token_input(self, request: HttpRequest, obj: Executor | None) -> bool:
        # A read-only view renders each field's value as text: it gets "token set" instead of the token.
        return obj is None or (self.has_change_permission(request, obj) and not self._mirrors_settings(obj))

    def get_fields(self, request: HttpRequest, obj: Executor | None = None) -> list[Any]:
        fields = list(ExecutorAdminForm.Meta.fields)
        if self._shows_token_input(request, obj):
            return fields
        return [name for name in fields if name not in {"token", "clear_token"}] + ["token_set"]

    def get_readonly_fields(self, request: HttpRequest, obj: Executor | None = None) -> list[str]:
        if self._mirrors_settings(obj):
            return ["name", "base_url", "connect_timeout_s", "read_timeout_s", "retries", "token_set"]
        return [] if self._shows_token_input(request, obj) else ["token_set"]


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "category",
        "agent_kind",
        "playbook",
        "executor",
        "active_prompt",
        "enabled",
        "updated_at",
    ]
    list_filter = ["enabled", "category", "agent_kind", "executor"]
    list_select_related = ["executor", "active_prompt"]
    search_fields = ["name", "slug", "description", "category"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["active_prompt"]
    inlines = [PromptVersionInline, NewPromptVersionInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "enabled"]}),
        ("In the store", {"fields": ["description", "category", "tags", "glyph", "icon"]}),
        (
            "Agent",
            {"fields": ["executor", "agent_kind", "playbook", "active_prompt", "plugins", "run_deadline_s"]},
        ),
        ("Settings", {"fields": ["settings_schema"]}),
    ]
