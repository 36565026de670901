"""The operators' API: traces, agent status, the health summary and the dead queue (``/api/...``)."""

from django.urls import URLPattern, path

from observability import agent_views, health_views, trace_views

urlpatterns: list[URLPattern] = [
    path("traces/", trace_views.TraceListView.as_view(), name="traces"),
    path("traces/<str:trace_id>", trace_views.TraceDetailView.as_view(), name="trace-detail"),
    path("runs/<uuid:run_id>/trace", trace_views.RunTraceView.as_view(), name="run-trace"),
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
