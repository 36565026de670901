from django.urls import path

from files import views

urlpatterns = [
    path("files/roots", views.RootsView.as_view(), name="file-roots"),
    path("files/<str:root>/list", views.ListView.as_view(), name="file-list"),
    path("files/<str:root>/stat", views.StatView.as_view(), name="file-stat"),
    path("files/<str:root>/download", views.DownloadView.as_view(), name="file-download"),
]
