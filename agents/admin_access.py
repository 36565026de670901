"""Admin pages where access meets the apps: a role's app grants (inline on the role, which rbac cannot
import), the grants themselves, and the read-only effective-access page of a user."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from agents.access import access_explained
from agents.models import AppGrant
from rbac import admin as rbac_admin
from rbac.models import Role
from rbac.selectors import bindings_held


class AppGrantInline(admin.TabularInline):
    model = AppGrant
    fields = ["action", "app", "created_by"]
    readonly_fields = ["created_by"]
    autocomplete_fields = ["app"]
    extra = 0


admin.site.unregister(Role)


@admin.register(Role)
class RoleWithGrantsAdmin(rbac_admin.RoleAdmin):
    inlines = [AppGrantInline, *rbac_admin.RoleAdmin.inlines]


@admin.register(AppGrant)
class AppGrantAdmin(admin.ModelAdmin):
    list_display = ["role", "action", "app_or_every_app", "created_by", "created_at"]
    list_select_related = ["role", "app", "created_by"]
    list_filter = ["action", "role", "app"]
    search_fields = ["role__name", "role__slug", "app__name", "app__slug"]
    autocomplete_fields = ["role", "app"]
    fields = ["role", "action", "app", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]

    @admin.display(description="app", ordering="app__name")
    def app_or_every_app(self, grant: AppGrant) -> str:
        return str(grant.app) if grant.app_id else "every app"

    def save_model(self, request: HttpRequest, obj: AppGrant, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    def get_urls(self) -> list[URLPattern]:
        page = self.admin_site.admin_view(self.effective_access_view)
        return [
            path("effective-access/<int:user_id>/", page, name="agents_effective_access"),
            *super().get_urls(),
        ]

    def effective_access_view(self, request: HttpRequest, user_id: int) -> HttpResponse:
        # It shows bindings and grants: whoever may read both may read it.
        if not request.user.has_perms(["agents.view_appgrant", "rbac.view_rolebinding"]):
            raise PermissionDenied
        subject = get_object_or_404(get_user_model(), pk=user_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Effective access of {subject.username}",
            "subject": subject,
            "rows": access_explained(subject),
            "bindings": bindings_held(subject).select_related("role", "user", "department"),
        }
        return TemplateResponse(request, "admin/agents/effective_access.html", context)


admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class UserWithAccessAdmin(rbac_admin.UserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "effective_access")

    @admin.display(description="access")
    def effective_access(self, user: Any) -> str:
        url = reverse("admin:agents_effective_access", args=[user.pk])
        return format_html('<a href="{}">effective access</a>', url)
