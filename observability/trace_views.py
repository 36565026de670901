"""``GET /api/traces/``, ``GET /api/traces/{trace_id}`` and ``GET /api/runs/{id}/trace``."""

from __future__ import annotations

import re

from django.http import Http404
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from core import params
from core.errors import NotFound
from observability.traces import TraceFilter, readable_trace, recent_traces, trace_detail
from runs.models import RunStatus
from runs.selectors import readable_run

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


class TraceNotFound(NotFound):
    code = "trace_not_found"
    message = gettext_lazy("No such trace.")


class SpanSerializer(serializers.Serializer):
    span_id = serializers.CharField()
    parent_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    kind = serializers.CharField()
    process = serializers.CharField(help_text="The process that recorded it: role@host:pid.")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    duration_ms = serializers.FloatField()
    offset_ms = serializers.FloatField(help_text="From the start of the trace's first span.")
    depth = serializers.IntegerField(help_text="0 for a root; the spans come depth first.")
    status = serializers.ChoiceField(choices=["unset", "ok", "error"])
    status_message = serializers.CharField()
    attributes = serializers.DictField()


class TraceRunSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    app = serializers.CharField()
    status = serializers.CharField()


class TraceSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    run = TraceRunSerializer(allow_null=True)
    started_at = serializers.DateTimeField()
    duration_ms = serializers.FloatField()
    spans = SpanSerializer(many=True)


class TraceListItemSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    run_id = serializers.UUIDField()
    app = serializers.CharField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.FloatField(help_text="The run's: from its creation to its end (or now).")
    span_count = serializers.IntegerField()
    error_count = serializers.IntegerField()


class TraceListSerializer(serializers.Serializer):
    results = TraceListItemSerializer(many=True)
    next = serializers.URLField(allow_null=True)


def _trace_response(trace_id: str, run) -> Response:
    detail = trace_detail(trace_id, run)
    if detail is None:
        raise TraceNotFound()
    return Response(TraceSerializer(detail).data)


class TraceListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("app", str, description="app slug"),
            OpenApiParameter("status", str, description="the run's status"),
            OpenApiParameter("min_duration_ms", int),
            OpenApiParameter("max_duration_ms", int),
            OpenApiParameter("before", str, description="cursor: traces started before this ISO 8601 time"),
            OpenApiParameter("limit", int, description="1 to 200 (default 50)"),
        ],
        responses=TraceListSerializer,
        summary="Recent traces of the runs I may read",
    )
    def get(self, request: Request) -> Response:
        query = request.query_params
        limits = {"minimum": 0, "maximum": 86_400_000 * 30}
        status = query.get("status")
        app = query.get("app")
        before = query.get("before")
        wanted = TraceFilter(
            app=params.slug(app, name="app") if app else None,
            status=params.choice(status, name="status", choices=RunStatus.values) if status else None,
            min_duration_ms=_optional(query.get("min_duration_ms"), "min_duration_ms", limits),
            max_duration_ms=_optional(query.get("max_duration_ms"), "max_duration_ms", limits),
            before=params.moment(before, name="before") if before else None,
            limit=params.integer(query.get("limit"), name="limit", default=50, minimum=1, maximum=200),
        )
        results, cursor = recent_traces(request.user, wanted)
        next_url = None
        if cursor is not None:
            following = query.copy()
            following["before"] = cursor.isoformat()
            next_url = request.build_absolute_uri(f"{reverse('traces')}?{following.urlencode()}")
        data = {"results": results, "next": next_url}
        return Response(TraceListSerializer(data).data)


def _optional(raw: str | None, name: str, limits: dict[str, int]) -> int | None:
    if raw is None or raw == "":
        return None
    return params.integer(raw, name=name, default=0, **limits)


class TraceDetailView(APIView):
    @extend_schema(responses=TraceSerializer, summary="A trace: its spans as a tree, depth first")
    def get(self, request: Request, trace_id: str) -> Response:
        if not TRACE_ID.match(trace_id):
            raise TraceNotFound()
        run, readable = readable_trace(request.user, trace_id)
        if not readable:
            raise TraceNotFound()
        return _trace_response(trace_id, run)


class RunTraceView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("run_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses=TraceSerializer,
        summary="A run's trace",
    )
    def get(self, request: Request, run_id) -> Response:
        run = readable_run(request.user, run_id, related=("app",))
        if run is None:
            raise Http404
        return _trace_response(run.trace_id, run)
