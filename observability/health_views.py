"""The operators' health API: the summary at the top of the dashboard and the dead queue entries."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import params
from observability.access import OperatorsOnly
from observability.selectors import dead_entries
from observability.summary import health_summary

DEAD_LIMIT_DEFAULT = 50
DEAD_LIMIT_MAX = 200
NOT_AN_OPERATOR = OpenApiResponse(description="Not signed in as an operator")


class HealthSummaryView(APIView):
    permission_classes = [IsAuthenticated, OperatorsOnly]

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, 404: NOT_AN_OPERATOR},
        summary="The fleet at a glance: agents, executors, queue, runs of the last hour, the reconciler",
    )
    def get(self, request: Request) -> Response:
        return Response(health_summary())


class DeadEntriesView(APIView):
    permission_classes = [IsAuthenticated, OperatorsOnly]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "limit", int, description=f"How many, newest first (1-{DEAD_LIMIT_MAX}, default 50)."
            )
        ],
        responses={200: OpenApiTypes.OBJECT, 404: NOT_AN_OPERATOR},
        summary="Queue entries that used up their attempts, most recent first",
    )
    def get(self, request: Request) -> Response:
        limit = params.integer(
            request.query_params.get("limit"),
            name="limit",
            default=DEAD_LIMIT_DEFAULT,
            minimum=1,
            maximum=DEAD_LIMIT_MAX,
        )
        return Response({"results": dead_entries(limit=limit)})
