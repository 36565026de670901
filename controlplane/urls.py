from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from observability import views as health

handler404 = "controlplane.api.json_404"
handler500 = "controlplane.api.json_500"

api: list[URLPattern | URLResolver] = [
    path("", include("rbac.urls")),
    path("", include("runs.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", login_required(SpectacularSwaggerView.as_view(url_name="schema")), name="api-docs"),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/", include(api)),
    path("admin/", admin.site.urls),
]
