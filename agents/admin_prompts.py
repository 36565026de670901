"""Prompt versions in the admin: the history on the app's page, saving a new version there, and
activating a version (with a reason) from the versions list. Versions are never changed or deleted;
numbers and authors are the service's (agents.prompts), not typed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.text import Truncator

from agents.access import apps_for
from agents.models import Action, PromptActivation, PromptVersion
from agents.prompts import REASON_MAX, InvalidPrompt, check_prompt, prompt_activate, prompt_version_create
from core.admin_mixins import ReadOnlyAdmin, ReadOnlyAdminMixin
from core.errors import DomainError

PREVIEW_CHARS = 80


def _is_active(version: PromptVersion) -> bool:
    return version.app.active_prompt_id == version.pk


class PromptVersionInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The app's saved versions, newest first, read-only."""

    model = PromptVersion
    verbose_name_plural = "prompt history"
    fields = ("number", "message", "author", "created_at", "active", "preview")
    readonly_fields = fields
    ordering = ["-number"]
    extra = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[PromptVersion]:
        return super().get_queryset(request).select_related("app", "author")

    @admin.display(boolean=True, description="active")
    def active(self, version: PromptVersion) -> bool:
        return _is_active(version)

    @admin.display(description="text")
    def preview(self, version: PromptVersion) -> str:
        return Truncator(version.text).chars(PREVIEW_CHARS)


class NewPromptVersionForm(forms.ModelForm):
    class Meta:
        model = PromptVersion
        fields = ["text", "parameters", "message"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        try:
            check_prompt(
                text=cleaned.get("text", ""),
                parameters=cleaned.get("parameters", {}),
                message=cleaned.get("message", ""),
            )
        except InvalidPrompt as invalid:
            for field, problem in invalid.detail.items():
                self.add_error(field, problem)
        return cleaned


class NewPromptVersionFormSet(BaseInlineFormSet):
    """Only new forms; each is saved by ``prompt_version_create`` (its number and author assigned there)."""

    author: Any = None  # the signed-in user, set per request by the inline

    def get_queryset(self) -> QuerySet[PromptVersion]:
        return self.model.objects.none()

    def save_new(self, form: forms.ModelForm, commit: bool = True) -> PromptVersion:
        data = form.cleaned_data
        return prompt_version_create(
            app=self.instance,
            text=data["text"],
            parameters=data.get("parameters") or {},
            message=data.get("message", ""),
            author=self.author,
        )


class NewPromptVersionInline(admin.StackedInline):
    """Save the app's next version (an app's first version becomes active; later ones are activated
    from the versions list)."""

    model = PromptVersion
    form = NewPromptVersionForm
    formset = NewPromptVersionFormSet
    verbose_name = "new prompt version"
    verbose_name_plural = "new prompt version"
    extra = 1
    max_num = 1
    can_delete = False

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (formset,), {"author": request.user})

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The model permission lets staff add versions at all; the app's grant decides on this app.
        allowed = super().has_add_permission(request, obj)
        return allowed and (obj is None or request.user.has_perm("agents.edit_prompt", obj))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request, obj)  # it shows nothing but the form for a new one

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ActivateForm(forms.Form):
    reason = forms.CharField(max_length=REASON_MAX, help_text="Why (the history shows it).")


@admin.register(PromptVersion)
class PromptVersionAdmin(ReadOnlyAdmin):
    """Read-only: versions are added on their app's page and never changed or deleted."""

    list_display = ["app", "number", "message", "author", "created_at", "active"]
    list_filter = ["app"]
    list_select_related = ["app", "author"]
    search_fields = ["text", "message"]
    ordering = ["app", "-number"]
    fields = ("app", "number", "text", "parameters", "message", "author", "created_at", "active")
    readonly_fields = fields
    actions = ["activate_version"]

    def has_activate_permission(self, request: HttpRequest) -> bool:
        return apps_for(request.user, Action.PROMPT_EDIT).exists()

    @admin.display(boolean=True, description="active")
    def active(self, version: PromptVersion) -> bool:
        return _is_active(version)

    @admin.action(description="Activate this version", permissions=["activate"])
    def activate_version(self, request: HttpRequest, queryset: QuerySet[PromptVersion]) -> Any:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.WARNING)
            return None
        version = queryset.get()
        if not request.user.has_perm("agents.edit_prompt", version.app):
            self.message_user(request, f"You may not edit the prompt of {version.app}.", messages.ERROR)
            return None
        form = ActivateForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self._ask_reason(request, version, form)
        try:
            prompt_activate(app=version.app, version=version, user=request.user, **form.cleaned_data)
        except DomainError as refused:
            self.message_user(request, refused.message, messages.ERROR)
            return None
        self.message_user(request, f"{version.app}: v{version.number} is now the active prompt.")
        return None

    def _ask_reason(
        self, request: HttpRequest, version: PromptVersion, form: ActivateForm
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": f"Activate v{version.number} of {version.app}",
            "opts": self.model._meta,
            "version": version,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/agents/promptversion/activate.html", context)


@admin.register(PromptActivation)
class PromptActivationAdmin(ReadOnlyAdmin):
    """The history of each app's active prompt: append-only, so read-only here."""

    list_display = ["app", "version", "previous", "reason", "activated_by", "created_at"]
    list_filter = ["app"]
    list_select_related = ["app", "version", "previous", "activated_by"]
    search_fields = ["reason"]
    fields = ("app", "version", "previous", "reason", "activated_by", "created_at")
    readonly_fields = fields
