"""The operators' pages, under /dashboard/ (the portal's layout; the 404 page for everyone else)."""

from django.urls import path, re_path

from portal import views

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard, name="home"),
    path("traces/", views.traces, name="traces"),
    re_path(r"^traces/(?P<trace_id>[0-9a-f]{32})$", views.trace, name="trace"),
]
