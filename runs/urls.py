from django.urls import path

from runs import session_views, views

urlpatterns = [
    path("runs/", views.RunListCreateView.as_view(), name="runs"),
    path("runs/start", views.RunStartStreamView.as_view(), name="runs-start"),
    path("runs/<uuid:run_id>/", views.RunDetailView.as_view(), name="run-detail"),
    path("runs/<uuid:run_id>/cancel", views.RunCancelView.as_view(), name="run-cancel"),
    path("runs/<uuid:run_id>/events", views.RunEventsView.as_view(), name="run-events"),
    path("runs/<uuid:run_id>/todos", views.RunTodosView.as_view(), name="run-todos"),
    path("runs/<uuid:run_id>/todos/events", views.RunTodoEventsView.as_view(), name="run-todo-events"),
    path("human-loop/pending", views.HumanLoopPendingView.as_view(), name="human-loop-pending"),
    path("human-loop/events", views.HumanLoopEventsView.as_view(), name="human-loop-events"),
    path("human-loop/reply", views.HumanLoopReplyView.as_view(), name="human-loop-reply"),
    *session_views.urlpatterns,
]
