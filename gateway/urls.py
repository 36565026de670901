from django.urls import path

from gateway import views

urlpatterns = [
    path("runs/<uuid:run_id>/tools/<str:plugin>", views.ToolCallView.as_view(), name="tool-call"),
    path("runs/<uuid:run_id>/tool-calls", views.RunToolCallsView.as_view(), name="run-tool-calls"),
]
