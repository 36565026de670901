"""Spans in the admin: browsable by trace id (the dashboard draws a trace's waterfall)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django.utils.http import urlencode

from observability.models import Span


@admin.register(Span)
class SpanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "trace_link",
        "span_id",
        "parent_id",
        "kind",
        "status",
        "duration",
        "process",
        "start",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["=trace_id", "=span_id", "=parent_id"]
    search_help_text = "A trace id (32 hex) shows the whole trace; a span id, that span."
    ordering = ["-start"]
    show_full_result_count = False  # the table holds millions of rows: no count(*) per page
    readonly_fields = [field.name for field in Span._meta.fields]

    def get_ordering(self, request):
        # A trace reads best in start order; the whole table, newest first (the start index either way).
        return ["start"] if request.GET.get("trace_id") or request.GET.get("q") else ["-start"]

    @admin.display(description="trace", ordering="trace_id")
    def trace_link(self, span: Span) -> str:
        url = "?" + urlencode({"trace_id": span.trace_id})
        return format_html('<a href="{}" title="{}">{}…</a>', url, span.trace_id, span.trace_id[:12])

    @admin.display(description="duration", ordering="duration_us")
    def duration(self, span: Span) -> str:
        return f"{span.duration_us / 1000:,.1f} ms"

    def lookup_allowed(self, lookup, value, request=None):
        return lookup == "trace_id" or super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
