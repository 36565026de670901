"""The app grants of the policy API (/api/rbac/grants/): which roles may do what on which app. Admins
only, by the admin's rules (core.permissions)."""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from agents import grants
from agents.models import Action, App, AppGrant
from core import params
from core.permissions import AdminModelPermissions
from rbac.models import Role

FILTER_MAX = 150


class GrantSerializer(serializers.ModelSerializer):
    role: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", queryset=Role.objects.all()
    )
    action = serializers.ChoiceField(choices=Action.choices)
    app: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=App.objects.all(),
        allow_null=True,
        default=None,
        help_text="The app (slug); null: every app.",
    )
    created_by: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = AppGrant
        fields = ["id", "role", "action", "app", "created_by", "created_at"]
        read_only_fields = ["id", "created_by", "created_at"]
        validators: list = []  # a duplicate is a 409 from agents.grants, not a 400


def grants_filtered(query: Any):
    found = AppGrant.objects.select_related("role", "app", "created_by")
    if query.get("role"):
        found = found.filter(role__slug=params.text(query["role"], name="role", max_length=FILTER_MAX))
    if query.get("app"):
        found = found.filter(app__slug=params.text(query["app"], name="app", max_length=FILTER_MAX))
    if query.get("action"):
        found = found.filter(action=params.choice(query["action"], name="action", choices=Action.values))
    return found.order_by("role__slug", "action", "id")


class GrantListView(generics.ListAPIView):
    permission_classes = [AdminModelPermissions]
    queryset = AppGrant.objects.all()
    serializer_class = GrantSerializer

    def get_queryset(self):
        return grants_filtered(self.request.query_params)

    @extend_schema(
        summary="App grants",
        parameters=[
            OpenApiParameter("role", str, description="Only grants to this role (slug)."),
            OpenApiParameter("app", str, description="Only grants on this app (slug)."),
            OpenApiParameter("action", str, enum=Action.values, description="Only this action."),
        ],
        responses={200: GrantSerializer(many=True), 400: OpenApiResponse(description="A bad filter")},
        tags=["policy"],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Grant a role an action on an app (or on every app)",
        responses={
            201: GrantSerializer,
            400: OpenApiResponse(description="Invalid input: detail names each field"),
            409: OpenApiResponse(description="The role already has this grant"),
        },
        tags=["policy"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        grant = grants.grant_create(actor=request.user, **serializer.validated_data)
        return Response(self.get_serializer(grant).data, status=status.HTTP_201_CREATED)


class GrantDetailView(generics.GenericAPIView):
    permission_classes = [AdminModelPermissions]
    queryset = AppGrant.objects.select_related("role", "app", "created_by")
    serializer_class = GrantSerializer

    @extend_schema(
        summary="One app grant",
        responses={200: GrantSerializer, 404: OpenApiResponse(description="No such grant")},
        tags=["policy"],
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Revoke an app grant",
        responses={204: None, 404: OpenApiResponse(description="No such grant")},
        tags=["policy"],
    )
    def delete(self, request: Request, pk: int) -> Response:
        grants.grant_delete(actor=request.user, grant=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("rbac/grants/", GrantListView.as_view(), name="policy-grants"),
    path("rbac/grants/<int:pk>/", GrantDetailView.as_view(), name="policy-grant"),
]
