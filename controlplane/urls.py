from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import URLPattern, URLResolver, include, path, re_path

from controlplane.api import api_not_found
from controlplane.api_docs import SchemaView, SwaggerView
from observability import views as health

handler404 = "controlplane.api.json_404"
handler500 = "controlplane.api.json_500"

api: list[URLPattern | URLResolver] = [
    path("", include("rbac.urls")),
    path("", include("agents.urls")),
    path("", include("runs.urls")),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", login_required(SwaggerView.as_view(url_name="schema")), name="api-docs"),
    re_path(r"", api_not_found),  # last: whatever else is under /api/ is a JSON 404, whatever DEBUG says
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/", include(api)),
    path("admin/", admin.site.urls),
]
