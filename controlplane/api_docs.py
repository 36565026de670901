"""The OpenAPI schema and Swagger UI, both served by the project (no CDN) and fit for a strict CSP."""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response


class SchemaView(SpectacularAPIView):
    """The schema as YAML (the default) or JSON (``?format=json`` or ``Accept: application/json``). Its
    errors are the one JSON error shape whatever was asked for: a 401 rendered as YAML is a download a
    browser cannot show."""

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and response.exception:
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response


class SwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI from drf-spectacular-sidecar's files; its start-up script is a URL of this view
    (``?script``), not inline, and the page has no inline style, so ``script-src 'self'`` and
    ``style-src 'self'`` suffice."""

    template_name = "api_docs/swagger_ui.html"
