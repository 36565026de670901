"""An app's prompt versions: the history, saving a version, one version with its diff, activation
(rollback), and the moves of the active version. Versions are immutable: no PUT, PATCH or DELETE."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Action, App, PromptVersion
from agents.prompt_serializers import (
    PromptActivatedSerializer,
    PromptActivateSerializer,
    PromptActivationSerializer,
    PromptVersionCreateSerializer,
    PromptVersionDetailSerializer,
    PromptVersionSerializer,
)
from agents.prompts import prompt_activate, prompt_diff, prompt_version_create, prompt_version_not_found
from agents.selectors import app_for
from core import params
from core.params import PG_INT_MAX

NOT_SEEN = OpenApiResponse(description="No such app, or not mine to see (the same body)")
NO_VERSION = OpenApiResponse(
    description="No such app or not mine to see (app_not_found), or no such version "
    "(prompt_version_not_found)"
)
NOT_ALLOWED = OpenApiResponse(description="I may see the app but not edit its prompt")


def _version(app: App, number: int) -> PromptVersion:
    version = None
    if 1 <= number <= PG_INT_MAX:  # beyond it the column holds nothing: not found, not a database error
        version = app.prompt_versions.select_related("author").filter(number=number).first()
    if version is None:
        raise prompt_version_not_found()
    return version


class PromptVersionListView(generics.GenericAPIView):
    serializer_class = PromptVersionSerializer

    @extend_schema(
        responses={200: PromptVersionSerializer(many=True), 404: NOT_SEEN},
        summary="An app's prompt versions, newest first",
    )
    def get(self, request: Request, slug: str) -> Response:
        app = app_for(user=request.user, slug=slug)
        versions = app.prompt_versions.select_related("author").order_by("-number")
        page = self.paginate_queryset(versions)
        context = {"active_id": app.active_prompt_id}
        return self.get_paginated_response(PromptVersionSerializer(page, many=True, context=context).data)

    @extend_schema(
        request=PromptVersionCreateSerializer,
        responses={201: PromptVersionSerializer, 403: NOT_ALLOWED, 404: NOT_SEEN},
        summary="Save the app's next prompt version (optionally activating it)",
    )
    def post(self, request: Request, slug: str) -> Response:
        app = app_for(user=request.user, slug=slug, action=Action.PROMPT_EDIT)
        body = PromptVersionCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = prompt_version_create(app=app, author=request.user, **body.validated_data)
        context = {"active_id": version.app.active_prompt_id}  # the app as the service left it, locked
        return Response(
            PromptVersionSerializer(version, context=context).data, status=status.HTTP_201_CREATED
        )


class PromptVersionDetailView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "against", int, description="Also diff against this version (`diff`); default: the active one"
            )
        ],
        responses={200: PromptVersionDetailSerializer, 404: NO_VERSION},
        summary="One prompt version, with its diff against the active one (or any other)",
    )
    def get(self, request: Request, slug: str, version: int) -> Response:
        app = app_for(user=request.user, slug=slug)
        shown = _version(app, version)
        active = app.active_prompt
        against = _against(app, request.query_params.get("against"), default=active)
        context = {
            "active_id": app.active_prompt_id,
            "active_number": active.number if active else None,
            "diff": _diff(active, shown),
            "against": against,
            "diff_against": _diff(against, shown),
        }
        return Response(PromptVersionDetailSerializer(shown, context=context).data)


def _against(app: App, raw: str | None, *, default: PromptVersion | None) -> PromptVersion | None:
    if raw is None or raw == "":
        return default
    number = params.integer(raw, name="against", default=0, minimum=1)
    if default is not None and default.number == number:
        return default
    found = app.prompt_versions.filter(number=number).first()
    if found is None:
        raise params.InvalidParameter("against", "No such version of this app.")
    return found


def _diff(old: PromptVersion | None, new: PromptVersion) -> str:
    return prompt_diff(old=old, new=new) if old is not None and old.pk != new.pk else ""


class PromptActivateView(APIView):
    @extend_schema(
        request=PromptActivateSerializer,
        responses={
            200: PromptActivatedSerializer,
            403: NOT_ALLOWED,
            404: NO_VERSION,
            409: OpenApiResponse(description="It is already the active version (already_active)"),
        },
        summary="Make a version the active one (a rollback when it is older)",
    )
    def post(self, request: Request, slug: str, version: int) -> Response:
        app = app_for(user=request.user, slug=slug, action=Action.PROMPT_EDIT)
        chosen = _version(app, version)
        body = PromptActivateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        activation = prompt_activate(app=app, version=chosen, user=request.user, **body.validated_data)
        context = {"active_id": chosen.pk}
        data = {"active_version": chosen, "activation": activation}
        return Response(PromptActivatedSerializer(data, context=context).data)


class PromptActivationListView(generics.GenericAPIView):
    serializer_class = PromptActivationSerializer

    @extend_schema(
        responses={200: PromptActivationSerializer(many=True), 404: NOT_SEEN},
        summary="Every move of the app's active prompt, newest first",
    )
    def get(self, request: Request, slug: str) -> Response:
        app = app_for(user=request.user, slug=slug)
        moves = app.prompt_activations.select_related("version", "previous", "activated_by")
        page = self.paginate_queryset(moves.order_by("-created_at", "-id"))
        return self.get_paginated_response(PromptActivationSerializer(page, many=True).data)


urlpatterns = [
    path("apps/<slug:slug>/prompts/", PromptVersionListView.as_view(), name="app-prompts"),
    path(
        "apps/<slug:slug>/prompts/activations/",
        PromptActivationListView.as_view(),
        name="app-prompt-activations",
    ),
    path(
        "apps/<slug:slug>/prompts/<int:version>/",
        PromptVersionDetailView.as_view(),
        name="app-prompt-version",
    ),
    path(
        "apps/<slug:slug>/prompts/<int:version>/activate",
        PromptActivateView.as_view(),
        name="app-prompt-activate",
    ),
]
