"""The observability app's admin: operator grants here, spans in ``admin_spans``."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from observability import admin_spans  # noqa: F401  (registers SpanAdmin)
from observability.models import OperatorGrant


@admin.register(OperatorGrant)
class OperatorGrantAdmin(admin.ModelAdmin):
    """Which roles may open the operators' pages (staff may without a grant)."""

    list_display = ["role", "action", "created_by", "created_at"]
    list_select_related = ["role", "created_by"]
    list_filter = ["action"]
    search_fields = ["role__name", "role__slug"]
    autocomplete_fields = ["role"]
    fields = ["role", "action", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request: HttpRequest, obj: OperatorGrant, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
