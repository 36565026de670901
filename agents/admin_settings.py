"""Admin for projects and app settings. Secrets are write-only here as in the API: the form never renders
one; blank keeps the stored ones."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from agents import app_settings
from agents.models import AppSetting, Project


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "department", "created_by", "created_at"]
    list_select_related = ["department", "created_by"]
    search_fields = ["name", "slug", "description"]
    list_filter = ["department"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["department"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request: HttpRequest, obj: Project, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]  # signed in
        super().save_model(request, obj, form, change)


class AppSettingAdminForm(forms.ModelForm):
    """``values`` shows and takes the settings that are not secrets; ``secrets`` takes a JSON object of
    secrets to set (``null`` removes one) and is never rendered. Left blank, every stored secret stays."""

    values = forms.JSONField(required=False, help_text="The settings of this layer, secrets left out.")
    secrets = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text='Write-only, a JSON object such as {"api_key": "..."}; null removes a secret. '
        "Leave blank to keep the stored secrets.",
    )

    class Meta:
        model = AppSetting
        fields = ["app", "scope", "project", "user", "values", "secrets"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            public, _ = app_settings.public_settings(self.instance.app.settings_schema, self.instance.values)
            self.initial["values"] = public

    def clean_secrets(self) -> dict[str, Any]:
        raw = self.cleaned_data.get("secrets") or ""
        if not raw.strip():
            return {}
        try:
            secrets = json.loads(raw)
        except ValueError:
            raise forms.ValidationError("Enter a JSON object.") from None
        if not isinstance(secrets, dict):
            raise forms.ValidationError("Enter a JSON object.")
        return secrets

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        app = cleaned.get("app")
        if app is None or "values" in self.errors or "secrets" in self.errors:
            return cleaned
        values, secrets = cleaned.get("values") or {}, cleaned.get("secrets") or {}
        if not isinstance(values, dict):
            self.add_error("values", "Enter a JSON object.")
            return cleaned
        schema = app.settings_schema
        public, _ = app_settings.public_settings(schema, values)
        stored = self.instance.values if self.instance.pk and self.instance.app_id == app.pk else {}
        layer = app_settings.layer_values(schema, stored, {**public, **secrets})
        for path, problems in app_settings.validation_errors(schema, layer, layer=True).items():
            self.add_error(None, f"{path}: {' '.join(problems)}")
        cleaned["values"] = layer
        return cleaned


@admin.register(AppSetting)
class AppSettingAdmin(admin.ModelAdmin):
    form = AppSettingAdminForm
    list_display = ["app", "scope", "project", "user", "secrets_set", "updated_by", "updated_at"]
    list_filter = ["scope", "app"]
    list_select_related = ["app", "project", "user", "updated_by"]
    search_fields = ["app__slug", "project__slug", "user__username"]
    autocomplete_fields = ["project", "user"]
    readonly_fields = ["secrets_set", "updated_by", "updated_at"]

    @admin.display(description="secrets set")
    def secrets_set(self, setting: AppSetting) -> str:
        _, names = app_settings.public_settings(setting.app.settings_schema, setting.values)
        return ", ".join(names) or "—"

    def save_model(self, request: HttpRequest, obj: AppSetting, form: Any, change: bool) -> None:
        obj.updated_by = request.user  # type: ignore[assignment]  # signed in
        super().save_model(request, obj, form, change)
