"""File roots, their ACLs, and the access audit (read-only, filterable, exported as CSV) in the admin."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin_mixins import ReadOnlyAdmin
from files.models import FileAccessEvent, FileACL, FileRoot, root_path_problem


class FileACLInline(admin.TabularInline):
    model = FileACL
    extra = 0
    autocomplete_fields = ["role"]
    fields = ["path_prefix", "role", "permission"]


@admin.register(FileRoot)
class FileRootAdmin(admin.ModelAdmin):
    list_display = ["name", "path", "enabled", "from_settings", "project", "acl_count", "path_ok"]
    list_filter = ["enabled", "from_settings"]
    search_fields = ["name", "path", "description"]
    autocomplete_fields = ["project"]
    inlines = [FileACLInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("project").annotate(acl_total=Count("acls"))

    def get_readonly_fields(self, request, obj=None):
        # A root declared in FILE_ROOTS is changed there (file_roots --sync would undo an edit here).
        return (
            ["name", "path", "from_settings"] if obj is not None and obj.from_settings else ["from_settings"]
        )

    @admin.display(description="ACLs", ordering="acl_total")
    def acl_count(self, root: FileRoot) -> int:
        return root.acl_total  # type: ignore[attr-defined]

    @admin.display(description="path ok", boolean=True)
    def path_ok(self, root: FileRoot) -> bool:
        return root_path_problem(root.path) is None


@admin.register(FileACL)
class FileACLAdmin(admin.ModelAdmin):
    list_display = ["root", "path_prefix", "role", "permission", "created_at"]
    list_filter = ["root", "permission"]
    search_fields = ["path_prefix", "role__name", "role__slug", "root__name"]
    autocomplete_fields = ["role"]
    list_select_related = ["root", "role"]


class RootFilter(admin.SimpleListFilter):
    title = "root"
    parameter_name = "root_name"

    def lookups(self, request, model_admin):
        return [
            (name, name) for name in FileRoot.objects.order_by("name").values_list("name", flat=True)[:200]
        ]

    def queryset(self, request, queryset):
        return queryset.filter(root_name=self.value()) if self.value() else queryset


# A cell a spreadsheet would run as a formula starts with one of these: it is written with a leading '.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = [
    "created_at",
    "username",
    "action",
    "root_name",
    "requested_path",
    "resolved_path",
    "outcome",
    "reason",
    "status",
    "range",
    "bytes_sent",
    "client_ip",
    "user_agent",
    "request_id",
    "trace_id",
]


def csv_cell(value: object) -> str:
    text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


@admin.register(FileAccessEvent)
class FileAccessEventAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "username",
        "action",
        "root_name",
        "requested_path",
        "outcome",
        "reason",
        "status",
        "bytes_sent",
        "client_ip",
        "trace_link",
    ]
    list_filter = ["outcome", "action", RootFilter, "created_at"]
    search_fields = ["=username", "requested_path", "=request_id", "=trace_id", "=client_ip"]
    search_help_text = "A username, a path (contains), a request id, a trace id or a client address."
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [field.name for field in FileAccessEvent._meta.fields]
    change_list_template = "admin/files/fileaccessevent/change_list.html"

    @admin.display(description="trace")
    def trace_link(self, event: FileAccessEvent) -> str:
        if not event.trace_id:
            return "-"
        url = reverse("admin:observability_span_changelist") + f"?trace_id={event.trace_id}"
        return format_html('<a href="{}">{}…</a>', url, event.trace_id[:8])

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_csv)
        return [path("export.csv", export, name="files_fileaccessevent_export"), *super().get_urls()]

    def export_csv(self, request: HttpRequest) -> StreamingHttpResponse:
        """The changelist as it is filtered and searched now, every matching row, streamed."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = self.get_changelist_instance(request).get_queryset(request)
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response = StreamingHttpResponse(self._csv_lines(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="file-accesses-{stamp}.csv"'
        return response

    def _csv_lines(self, rows) -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield "\ufeff" + writer.writerow(EXPORT_COLUMNS)  # the BOM: spreadsheets then read UTF-8
        for row in rows.values_list(*EXPORT_COLUMNS).iterator(chunk_size=2000):
            yield writer.writerow([csv_cell(value) for value in row])
