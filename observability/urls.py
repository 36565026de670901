"""The operators' API: traces, agent status, the health summary and the dead queue (``/api/...``)."""

from django.urls import URLPattern, path

from observability import agent_views, health_views

urlpatterns: list[URLPattern] = [
    path("agents/status", agent_views.AgentStatusListView.as_view(), name="agent-status"),
    path(
        "agents/status/<int:status_id>/history",
        agent_views.AgentStatusHistoryView.as_view(),
        name="agent-status-history",
    ),
    path("agents/events", agent_views.AgentEventsView.as_view(), name="agent-events"),
    path("health/summary", health_views.HealthSummaryView.as_view(), name="health-summary"),
    path("queue/dead", health_views.DeadEntriesView.as_view(), name="queue-dead"),
]
