"""Sessions (conversations): one with its runs, and mine, newest first. The portal's conversation page reads
a session here, then each run's events (``GET /api/runs/{id}/events``)."""

from __future__ import annotations

from django.http import Http404
from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import params
from runs.models import Session
from runs.selectors import readable_session
from runs.serializers import RunSerializer
from runs.views import RUN_RELATED

SESSION_RUNS_MAX = 500  # a longer conversation shows its latest runs


class SessionSerializer(serializers.ModelSerializer):
    app: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    app_name = serializers.CharField(source="app.name", read_only=True)
    project: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    user = serializers.CharField(source="user.username", read_only=True, help_text="Whose conversation.")

    class Meta:
        model = Session
        fields = ["id", "app", "app_name", "project", "title", "user", "created_at"]
        read_only_fields = fields


class SessionDetailSerializer(SessionSerializer):
    mine = serializers.SerializerMethodField(help_text="Whether I may send, answer and cancel here.")
    runs = serializers.SerializerMethodField(
        help_text=f"Its runs, oldest first (the latest {SESSION_RUNS_MAX})."
    )

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "mine", "runs"]
        read_only_fields = fields

    def get_mine(self, session: Session) -> bool:
        user = self.context["request"].user
        return bool(user.is_superuser or session.user_id == user.pk)

    @extend_schema_field(RunSerializer(many=True))
    def get_runs(self, session: Session):
        runs = session.runs.select_related(*RUN_RELATED).order_by("-created_at", "-pk")[:SESSION_RUNS_MAX]
        return RunSerializer(reversed(list(runs)), many=True).data


class SessionListView(generics.ListAPIView):
    serializer_class = SessionSerializer

    def get_queryset(self):
        sessions = Session.objects.filter(user_id=self.request.user.pk or 0).select_related(
            "app", "project", "user"
        )
        app = self.request.query_params.get("app")
        if app:
            sessions = sessions.filter(app__slug=params.slug(app, name="app"))
        return sessions.order_by("-created_at", "-pk")

    @extend_schema(summary="My sessions (conversations), newest first")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SessionDetailView(APIView):
    @extend_schema(responses=SessionDetailSerializer, summary="A session (conversation) with its runs")
    def get(self, request: Request, session_id) -> Response:
        session = readable_session(request.user, session_id)
        if session is None:
            raise Http404
        return Response(SessionDetailSerializer(session, context={"request": request}).data)


urlpatterns = [
    path("sessions/", SessionListView.as_view(), name="sessions"),
    path("sessions/<uuid:session_id>/", SessionDetailView.as_view(), name="session-detail"),
]
