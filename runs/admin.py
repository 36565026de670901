from django.contrib import admin, messages

from runs import services
from runs.models import HumanLoopRequest, Run, RunEvent, Session, Todo


class RunEventInline(admin.TabularInline):
    model = RunEvent
    fields = ("seq", "type", "data", "created_at")
    readonly_fields = ("seq", "type", "data", "created_at")
    extra = 0
    can_delete = False
    ordering = ["seq"]
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        # A flood run has tens of thousands of events: the page shows the first 500 (the API pages all).
        return super().get_queryset(request).filter(seq__lte=500).order_by("seq")


class TodoInline(admin.TabularInline):
    model = Todo
    fields = ("position", "title", "status", "updated_seq")
    readonly_fields = ("position", "title", "status", "updated_seq")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "app",
        "user",
        "status",
        "executor",
        "attempts",
        "last_seq",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "app", "executor"]
    list_select_related = ["app", "user", "executor"]
    search_fields = ["=id", "=trace_id", "user__username"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [field.name for field in Run._meta.fields]
    inlines = [TodoInline, RunEventInline]
    actions = ["cancel_runs"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Cancel selected runs", permissions=["change"])
    def cancel_runs(self, request, queryset):
        cancelled = 0
        for run in queryset.select_related("executor").active():
            services.run_cancel(run=run)  # the worker holding it tells the executor
            cancelled += 1
        self.message_user(request, f"Asked {cancelled} run(s) to cancel.", messages.SUCCESS)


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["id", "app", "user", "title", "created_at"]
    list_select_related = ["app", "user"]
    search_fields = ["=id", "user__username", "title"]
    readonly_fields = ["id", "app", "user", "created_at"]


@admin.register(HumanLoopRequest)
class HumanLoopRequestAdmin(admin.ModelAdmin):
    list_display = ["question", "run", "status", "answered_by", "created_at"]
    list_filter = ["status"]
    list_select_related = ["run", "answered_by"]
    readonly_fields = [field.name for field in HumanLoopRequest._meta.fields]

    def has_add_permission(self, request):
        return False
