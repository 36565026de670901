from django.urls import path

from rbac import policy_views, views

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("auth/token/", views.TokenView.as_view(), name="auth-token"),
    *policy_views.urlpatterns,
]
