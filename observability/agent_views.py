"""The operators' agent-status API: current states, one agent's history, and the ``agents`` SSE stream.

Operators only (``may_view_dashboard``); anyone else is told, as for anything they may not see, 404.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import AgentState, AgentStatus, AgentStatusChange
from core import params
from observability.access import may_view_dashboard
from observability.agent_status import CHANNEL, last_change_id
from observability.agent_stream import stream_agents
from runs.views import StreamView

HISTORY_MAX = 500


class AgentStatusSerializer(serializers.ModelSerializer):
    executor = serializers.CharField(source="executor.name")
    executor_id = serializers.IntegerField()

    class Meta:
        model = AgentStatus
        fields = [
            "id",
            "executor",
            "executor_id",
            "agent_id",
            "app",
            "state",
            "detail",
            "since",
            "observed_at",
        ]


class AgentStatusListSerializer(serializers.Serializer):
    results = AgentStatusSerializer(many=True)
    last_event_id = serializers.CharField(
        help_text="Open GET /api/agents/events with ?lastEventId= this to get every change after this list."
    )


class AgentStatusChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentStatusChange
        fields = ["id", "previous", "state", "detail", "at"]


class AgentStatusHistorySerializer(serializers.Serializer):
    results = AgentStatusChangeSerializer(many=True)


def require_operator(request: Request) -> None:
    if not may_view_dashboard(request.user):
        raise Http404


class AgentStatusListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=AgentState.values, description="only agents in this state"),
            OpenApiParameter("executor", str, description="only agents of the executor of this name"),
        ],
        responses=AgentStatusListSerializer,
        summary="Every agent's current (debounced) state on every executor (operators)",
    )
    def get(self, request: Request) -> Response:
        require_operator(request)
        # Read first: a change committed between the two reads is then sent again by a stream opened
        # with it, never missed.
        last = last_change_id()
        statuses = AgentStatus.objects.select_related("executor").order_by("executor__name", "agent_id")
        query = request.query_params
        if query.get("state"):
            statuses = statuses.filter(
                state=params.choice(query["state"], name="state", choices=AgentState.values)
            )
        if query.get("executor"):
            statuses = statuses.filter(executor__name=params.slug(query["executor"], name="executor"))
        results = AgentStatusSerializer(statuses, many=True).data
        return Response({"results": results, "last_event_id": f"{CHANNEL}:{last}"})


class AgentStatusHistoryView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "limit", int, description=f"newest first, at most this many (default 100, max {HISTORY_MAX})"
            )
        ],
        responses=AgentStatusHistorySerializer,
        summary="One agent's changes of state, newest first (operators)",
    )
    def get(self, request: Request, status_id: int) -> Response:
        require_operator(request)
        if not AgentStatus.objects.filter(pk=status_id).exists():
            raise Http404
        limit = params.integer(
            request.query_params.get("limit"), name="limit", default=100, minimum=1, maximum=HISTORY_MAX
        )
        changes = AgentStatusChange.objects.filter(status_id=status_id).order_by("-at", "-pk")[:limit]
        return Response({"results": AgentStatusChangeSerializer(changes, many=True).data})


class AgentEventsView(StreamView):
    """SSE; errors (a malformed Last-Event-ID, a 404, too many streams) are JSON."""

    @extend_schema(
        responses={(200, "text/event-stream"): OpenApiTypes.STR},
        summary="Agent status changes as Server-Sent Events (operators)",
        description=(
            "Event `agent_status`, id `agents:<change id>`, data `{executor, executor_id, status_id, "
            "agent_id, app, state, previous, detail, since}`. Reconnect with `Last-Event-ID` (or "
            "`?lastEventId=`) to get exactly the changes after it; without an id the stream starts at the "
            "present (open it with the `last_event_id` of `GET /api/agents/status`). Keep-alives "
            "(`keep-alive`) every 10-20 s."
        ),
    )
    def get(self, request: Request):
        require_operator(request)
        return stream_agents(request._request)
