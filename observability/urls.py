"""The operators' API: traces, agent status, the health summary and the dead queue (``/api/...``)."""

from django.urls import URLPattern, path

from observability import health_views

urlpatterns: list[URLPattern] = [
    path("health/summary", health_views.HealthSummaryView.as_view(), name="health-summary"),
    path("queue/dead", health_views.DeadEntriesView.as_view(), name="queue-dead"),
]
