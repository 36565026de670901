"""prompt_views: filled by its own change"""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
