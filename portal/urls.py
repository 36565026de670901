from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("", views.store, name="store"),
    path("runs/", views.runs, name="runs"),
    path("apps/<slug:slug>/new", views.conversation_new, name="conversation-new"),
    path("apps/<slug:slug>/prompts", views.prompts, name="prompts"),
    path("sessions/<uuid:session_id>", views.conversation, name="conversation"),
    path("runs/<uuid:run_id>", views.run_page, name="run"),
    path("inbox", views.inbox, name="inbox"),
    path("files/", views.files, name="files"),
]
