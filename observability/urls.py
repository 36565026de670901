"""The operators' API: traces, agent status, the health summary and the dead queue (``/api/...``)."""

from django.urls import URLPattern, path  # noqa: F401  (entries are added by each part as it lands)

urlpatterns: list[URLPattern] = []
