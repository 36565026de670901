"""The app store: the apps I may see, one app, its icon."""

from __future__ import annotations

import mimetypes

from django.db.models import Q
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.access import actions_on, store_apps_for
from agents.selectors import app_for, app_not_found
from agents.serializers import AppDetailSerializer, AppSerializer
from core import params

SEARCH_MAX = 100


class AppListView(generics.ListAPIView):
    serializer_class = AppSerializer

    def get_queryset(self):
        apps = store_apps_for(self.request.user).select_related("active_prompt")
        query = self.request.query_params
        if query.get("q"):
            text = params.text(query["q"], name="q", max_length=SEARCH_MAX)
            apps = apps.filter(
                Q(name__icontains=text) | Q(description__icontains=text) | Q(slug__icontains=text)
            )
        if query.get("category"):
            apps = apps.filter(category=params.text(query["category"], name="category", max_length=50))
        return apps.order_by("name", "pk")

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Search in name, slug and description."),
            OpenApiParameter("category", str, description="Only this category."),
        ],
        summary="The app store: apps I may see, with whether I may start them",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class AppDetailView(APIView):
    @extend_schema(
        responses={
            200: AppDetailSerializer,
            404: OpenApiResponse(description="No such app, or not mine to see"),
        },
        summary="One app",
    )
    def get(self, request: Request, slug: str) -> Response:
        app = store_apps_for(request.user).select_related("active_prompt").filter(slug=slug).first()
        if app is None:
            raise app_not_found()
        context = {"actions": actions_on(request.user, app)}
        return Response(AppDetailSerializer(app, context=context).data)


class AppIconView(APIView):
    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY}, summary="An app's uploaded icon")
    def get(self, request: Request, slug: str):
        app = app_for(user=request.user, slug=slug)
        if not app.icon:
            raise app_not_found()
        content_type = mimetypes.guess_type(app.icon.name)[0] or "application/octet-stream"
        response = FileResponse(app.icon.open("rb"), content_type=content_type)
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Cache-Control"] = "private, max-age=300"
        return response
