"""An app's layered settings (``GET|PUT /api/apps/{slug}/settings``, ``.../settings/effective``) and
projects (``GET|POST /api/projects/``). No response holds a secret: only their names (``secrets_set``)."""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import app_settings
from agents.models import Action, App, AppSetting, Project, SettingScope
from agents.projects import project_create, project_for, projects_for
from agents.selectors import app_for
from core import params
from rbac.models import Department


class SettingsLayerSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=SettingScope.choices)
    project = serializers.CharField(allow_null=True, help_text="The project's slug (scope=project).")
    values = serializers.JSONField(help_text="The layer's settings, secrets left out.")
    secrets_set = serializers.ListField(child=serializers.CharField(), help_text="Secrets this layer sets.")
    schema = serializers.JSONField(help_text="The app's settings schema (JSON Schema).")
    updated_at = serializers.DateTimeField(allow_null=True)
    updated_by = serializers.CharField(allow_null=True, help_text="Username of the last writer.")


class SettingsPutSerializer(serializers.Serializer):
    values = serializers.JSONField(
        help_text="The whole layer. A secret left out keeps its stored value; a secret given as null is "
        "removed."
    )

    def validate_values(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class EffectiveSettingsSerializer(serializers.Serializer):
    project = serializers.CharField(allow_null=True)
    values = serializers.JSONField(
        help_text="The merged settings a run of mine would start with, no secrets."
    )
    secrets_set = serializers.ListField(child=serializers.CharField())
    sources = serializers.DictField(
        child=serializers.ChoiceField(choices=SettingScope.choices), help_text="Each key's layer."
    )
    schema = serializers.JSONField()


class ProjectSerializer(serializers.ModelSerializer):
    department: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", queryset=Department.objects.all(), help_text="The owning department's slug."
    )

    class Meta:
        model = Project
        fields = ["slug", "name", "description", "department", "created_at"]
        read_only_fields = ["created_at"]
        # The service answers a taken slug (409); the serializer's own uniqueness check would say 400.
        extra_kwargs: dict[str, dict[str, Any]] = {"slug": {"validators": []}}


SCOPE_PARAMETER = OpenApiParameter("scope", str, enum=SettingScope.values, required=True)
PROJECT_PARAMETER = OpenApiParameter("project", str, description="A project's slug.")
ERRORS = {
    400: OpenApiResponse(description="Bad scope/project parameter, or values outside the app's schema"),
    403: OpenApiResponse(description="The app is visible to me but this is not mine to read or change"),
    404: OpenApiResponse(description="No such app or project, or not mine to see"),
}


def _project_param(request: Request) -> Project | None:
    raw = request.query_params.get("project")
    if not raw:
        return None
    return project_for(user=request.user, slug=params.slug(raw, name="project"))


def _scope_param(request: Request) -> str:
    raw = request.query_params.get("scope")
    if raw is None:
        raise params.InvalidParameter("scope", f"Required: one of {', '.join(SettingScope.values)}.")
    return params.choice(raw, name="scope", choices=SettingScope.values)


def _layer_body(app: App, scope: str, project: Project | None, row: AppSetting | None) -> dict[str, Any]:
    public, secrets_set = app_settings.public_settings(app.settings_schema, row.values if row else {})
    return {
        "scope": scope,
        "project": project.slug if project else None,
        "values": public,
        "secrets_set": secrets_set,
        "schema": app.settings_schema,
        "updated_at": row.updated_at if row else None,
        "updated_by": row.updated_by.get_username() if row and row.updated_by else None,
    }


class AppSettingsView(APIView):
    @extend_schema(
        parameters=[SCOPE_PARAMETER, PROJECT_PARAMETER],
        responses={200: SettingsLayerSerializer, **ERRORS},
        summary="One layer of an app's settings (secrets only by name)",
        description="scope=app: anyone who may see the app; scope=project: app.configure and working in "
        "the project; scope=user: my own, for an app I may use.",
    )
    def get(self, request: Request, slug: str) -> Response:
        app, scope, project = self._target(request, slug)
        app_settings.check_access(
            app=app, scope=scope, project=project, user=request.user, by=request.user, writing=False
        )
        row = app_settings.setting_layer(app=app, scope=scope, project=project, user=request.user)
        return Response(_layer_body(app, scope, project, row))

    @extend_schema(
        parameters=[SCOPE_PARAMETER, PROJECT_PARAMETER],
        request=SettingsPutSerializer,
        responses={200: SettingsLayerSerializer, **ERRORS},
        summary="Replace one layer of an app's settings",
        description="Checked against the app's settings schema (required keys may come from another "
        "layer). scope=app and scope=project need app.configure; scope=user is my own, for an app I may use.",
    )
    def put(self, request: Request, slug: str) -> Response:
        app, scope, project = self._target(request, slug)
        body = SettingsPutSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        row = app_settings.settings_put(
            app=app,
            scope=scope,
            project=project,
            user=request.user,
            values=body.validated_data["values"],
            by=request.user,
        )
        return Response(_layer_body(app, scope, project, row))

    def _target(self, request: Request, slug: str) -> tuple[App, str, Project | None]:
        app = app_for(user=request.user, slug=slug)
        return app, _scope_param(request), _project_param(request)


class EffectiveSettingsView(APIView):
    @extend_schema(
        parameters=[PROJECT_PARAMETER],
        responses={200: EffectiveSettingsSerializer, **ERRORS},
        summary="The settings a run of mine would start with (merged; secrets only by name)",
        description="App default < project < user, merged per top-level key; `sources` names each "
        "key's layer.",
    )
    def get(self, request: Request, slug: str) -> Response:
        app = app_for(user=request.user, slug=slug, action=Action.USE)
        project = _project_param(request)
        merged = app_settings.merged_settings(
            app=app, project_id=project.pk if project else None, user_id=request.user.pk
        )
        public, secrets_set = app_settings.public_settings(app.settings_schema, merged.values)
        body = {
            "project": project.slug if project else None,
            "values": public,
            "secrets_set": secrets_set,
            "sources": merged.sources,
            "schema": app.settings_schema,
        }
        return Response(body)


class ProjectListCreateView(generics.ListAPIView):
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return projects_for(self.request.user).select_related("department").order_by("name", "pk")

    @extend_schema(summary="Projects I may work in")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=ProjectSerializer,
        responses={
            201: ProjectSerializer,
            400: OpenApiResponse(description="Invalid body (e.g. no such department)"),
            403: OpenApiResponse(description="Not a member of the department or of one above it"),
            409: OpenApiResponse(description="The slug is taken"),
        },
        summary="Make a project owned by one of my departments",
    )
    def post(self, request: Request) -> Response:
        body = ProjectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        project = project_create(
            slug=data["slug"],
            name=data["name"],
            description=data.get("description", ""),
            department=data["department"],
            user=request.user,
        )
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("apps/<slug:slug>/settings", AppSettingsView.as_view(), name="app-settings"),
    path(
        "apps/<slug:slug>/settings/effective", EffectiveSettingsView.as_view(), name="app-settings-effective"
    ),
    path("projects/", ProjectListCreateView.as_view(), name="projects"),
]
