from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.i18n import JavaScriptCatalog

from controlplane.api import api_not_found
from controlplane.api_docs import SchemaView, SwaggerView
from observability import views as health
from observability.metrics import metrics
from portal import views as portal

handler404 = "controlplane.api.json_404"
handler500 = "controlplane.api.json_500"

api: list[URLPattern | URLResolver] = [
    path("", include("rbac.urls")),
    path("", include("agents.urls")),
    path("", include("runs.urls")),
    path("", include("gateway.urls")),
    path("", include("files.urls")),
    path("", include("observability.urls")),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", login_required(SwaggerView.as_view(url_name="schema")), name="api-docs"),
    re_path(r"", api_not_found),  # last: whatever else is under /api/ is a JSON 404, whatever DEBUG says
]

urlpatterns = [
    path("", portal.home, name="home"),
    path("portal/", include("portal.urls")),
    path("dashboard/", include("portal.dashboard_urls")),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the portal's language switch
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["portal"]), name="javascript-catalog"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("api/", include(api)),
    path("admin/", admin.site.urls),
]
