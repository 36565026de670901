"""Admin for the agent-status monitor's tables (observability.agent_status writes them): read-only."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from agents.models import AgentStatus, AgentStatusChange, ExecutorHealth
from core.admin_mixins import ReadOnlyAdmin


class AgentStatusChangeInline(admin.TabularInline):
    model = AgentStatusChange
    fields = readonly_fields = ("at", "previous", "state", "detail")
    ordering = ["-at", "-id"]
    extra = 0
    can_delete = False
    max_num = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest):
        # An agent that flaps for months has a long history: the page shows the newest 200 changes.
        newest = super().get_queryset(request).order_by("-at", "-id").values_list("pk", flat=True)[:200]
        return super().get_queryset(request).filter(pk__in=list(newest))


@admin.register(AgentStatus)
class AgentStatusAdmin(ReadOnlyAdmin):
    list_display = ["executor", "agent_id", "app", "state", "since", "observed_at"]
    list_filter = ["state", "executor", "app"]
    list_select_related = ["executor"]
    search_fields = ["agent_id", "app", "executor__name"]
    fields = readonly_fields = (
        "executor",
        "agent_id",
        "app",
        "state",
        "detail",
        "since",
        "observed_at",
        "pending_state",
        "pending_count",
    )
    inlines = [AgentStatusChangeInline]


@admin.register(ExecutorHealth)
class ExecutorHealthAdmin(ReadOnlyAdmin):
    list_display = ["executor", "up", "failed_polls", "last_seen_at", "last_poll_at", "last_error"]
    list_filter = ["up"]
    list_select_related = ["executor"]
    fields = readonly_fields = (
        "executor",
        "up",
        "failed_polls",
        "last_error",
        "last_poll_at",
        "last_seen_at",
    )
