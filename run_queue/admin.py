from django.contrib import admin, messages

from run_queue import handlers, services
from run_queue.models import QueueEntry


@admin.register(QueueEntry)
class QueueEntryAdmin(admin.ModelAdmin):
    list_display = [
        "run_id",
        "state",
        "priority",
        "attempts",
        "max_attempts",
        "available_at",
        "lease_owner",
        "lease_expires_at",
        "last_error_class",
        "updated_at",
    ]
    list_filter = ["state", "last_error_class"]
    search_fields = ["=run_id", "lease_owner"]
    ordering = ["-updated_at"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # counting millions of finished rows on every page view costs
    actions = ["retry_now", "mark_dead"]
    readonly_fields = [field.name for field in QueueEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry now (dead, parked or waiting entries)", permissions=["change"])
    def retry_now(self, request, queryset):
        count = services.entries_retry_now(ids=queryset.values_list("pk", flat=True))
        self.message_user(
            request, f"{count} entr{'y' if count == 1 else 'ies'} made ready.", messages.SUCCESS
        )

    @admin.action(description="Mark dead (not running entries)", permissions=["change"])
    def mark_dead(self, request, queryset):
        entries = services.entries_mark_dead(
            ids=queryset.values_list("pk", flat=True), reason=f"marked dead by {request.user}"
        )
        handler = handlers.registered()
        for entry in entries if handler else []:
            handler.on_dead(entry)  # type: ignore[union-attr]
        count = len(entries)
        self.message_user(
            request, f"{count} entr{'y' if count == 1 else 'ies'} marked dead.", messages.WARNING
        )
