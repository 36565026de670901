"""Plugin calls in the admin: the gateway's audit, read-only (filter by plugin, outcome, run)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from core.admin_mixins import ReadOnlyAdmin
from gateway.models import PluginCall


class PluginFilter(admin.SimpleListFilter):
    """The plugins that have been called (one DISTINCT over the plugin index), not a fixed list."""

    title = "plugin"
    parameter_name = "plugin"

    def lookups(self, request, model_admin):
        names = PluginCall.objects.order_by().values_list("plugin", flat=True).distinct()[:100]
        return [(name, name) for name in sorted(names)]

    def queryset(self, request, queryset):
        return queryset.filter(plugin=self.value()) if self.value() else queryset


@admin.register(PluginCall)
class PluginCallAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "plugin",
        "outcome",
        "status",
        "error_code",
        "duration",
        "run_link",
        "app_slug",
    ]
    list_filter = [PluginFilter, "outcome", "status", "created_at"]
    search_fields = ["=run__id", "=trace_id", "=call_id", "error_code"]
    search_help_text = "A run id, a trace id, a call id or an error code."
    date_hierarchy = "created_at"
    list_select_related = False
    show_full_result_count = False
    readonly_fields = [field.name for field in PluginCall._meta.fields if field.name != "arguments"] + [
        "arguments_json",
        "trace_link",
    ]
    exclude = ["arguments"]

    def lookup_allowed(self, lookup, value, request=None):
        return lookup in {"run__id__exact", "run_id", "run"} or super().lookup_allowed(lookup, value, request)

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, call: PluginCall) -> str:
        return f"{call.duration_ms:,.1f} ms"

    @admin.display(description="run")
    def run_link(self, call: PluginCall) -> str:
        if call.run_id is None:
            return "-"
        url = "?" + urlencode({"run": str(call.run_id)})
        return format_html('<a href="{}" title="{}">{}…</a>', url, call.run_id, str(call.run_id)[:8])

    @admin.display(description="arguments")
    def arguments_json(self, call: PluginCall) -> str:
        return format_html("<pre>{}</pre>", json.dumps(call.arguments, indent=2, ensure_ascii=False))

    @admin.display(description="trace")
    def trace_link(self, call: PluginCall) -> str:
        if not call.trace_id:
            return "-"
        url = reverse("admin:observability_span_changelist") + "?" + urlencode({"trace_id": call.trace_id})
        return format_html('<a href="{}">{}</a>', url, call.trace_id)
