from django.urls import path

from agents import grant_views, prompt_views, settings_views, views

urlpatterns = [
    path("apps/", views.AppListView.as_view(), name="apps"),
    path("apps/<slug:slug>/", views.AppDetailView.as_view(), name="app-detail"),
    path("apps/<slug:slug>/icon", views.AppIconView.as_view(), name="app-icon"),
    *prompt_views.urlpatterns,
    *settings_views.urlpatterns,
    *grant_views.urlpatterns,
]
