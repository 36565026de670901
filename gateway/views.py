"""The tool gateway's endpoint, ``POST /api/runs/{id}/tools/{plugin}`` (the work: ``gateway.calls``)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import params
from core.throttling import client_address
from gateway import calls
from gateway.models import PluginCall
from runs.selectors import readable_run

RUN_CALLS_MAX = 500  # a page of a run's calls; ?after=<the last id> for the next

_ERRORS = {
    400: "invalid_json / invalid_arguments (detail: the fields)",
    401: "invalid_token / token_expired",
    403: "token_not_for_run / run_finished / plugin_not_enabled / plugin_not_declared",
    404: "the run does not exist",
    422: "the plugin's own refusal (e.g. host_not_allowed, statement_not_allowed)",
    429: "rate_limited / gateway_busy (Retry-After)",
    502: "plugin_failed / result_too_large / bad_result",
    504: "plugin_timeout, or the plugin's own timeout",
}


class ToolCallView(APIView):
    """Authenticated by the run-scoped gateway token alone (not a user's session or API token)."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()  # the gateway's own per-run and per-plugin limits (gateway.calls)

    @extend_schema(
        summary="Call one of the run's plugins (executors only)",
        description=(
            "The executor running the run calls this with `Authorization: Bearer <tool_gateway.token>` from "
            "the run's start request and the plugin's arguments as the JSON body. `Tool-Call-Id` names the "
            "executor's own tool.call event; without it the gateway emits tool.call and tool.result on the "
            "run's stream itself. `traceparent` continues the run's trace. Every call is audited."
        ),
        parameters=[
            OpenApiParameter("Tool-Call-Id", str, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("traceparent", str, OpenApiParameter.HEADER, required=False),
        ],
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="{result, call_id}"),
            **{status: OpenApiResponse(description=text) for status, text in _ERRORS.items()},
        },
        auth=[],
        tags=["tool gateway"],
    )
    def post(self, request: Request, run_id, plugin: str) -> Response:
        authorization = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = authorization.partition(" ")
        call_id = request.META.get("HTTP_TOOL_CALL_ID", "")
        answer = calls.handle(
            calls.Request(
                run_id=run_id,
                plugin=plugin,
                token=token.strip() if scheme.lower() == "bearer" else "",
                body=request.body,
                call_id=call_id if calls.CALL_ID.match(call_id) else "",
                traceparent=request.META.get("HTTP_TRACEPARENT"),
                client_ip=client_address(request) or None,
            )
        )
        response = Response(answer.body, status=answer.status)
        if answer.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="tool-gateway"'
        if (retry_after := calls.retry_after_header(answer)) is not None:
            response["Retry-After"] = retry_after
        return response


class PluginCallSerializer(serializers.ModelSerializer):
    class Meta:
        model = PluginCall
        fields = [
            "id",
            "created_at",
            "plugin",
            "call_id",
            "outcome",
            "status",
            "error_code",
            "duration_ms",
            "plugin_ms",
            "response_bytes",
            "trace_id",
            "span_id",
        ]


class RunToolCallsView(APIView):
    """The gateway's record of a run's plugin calls (arguments stay in the admin's audit), for whoever may
    read the run; a run they may not read is a 404."""

    @extend_schema(
        parameters=[OpenApiParameter("after", int, description="only calls with a greater id (paging)")],
        responses=PluginCallSerializer(many=True),
        summary="A run's plugin calls, as audited",
    )
    def get(self, request: Request, run_id) -> Response:
        after = params.integer(request.query_params.get("after"), name="after", default=0, maximum=2**63 - 1)
        run = readable_run(request.user, run_id)
        if run is None:
            raise Http404
        rows = list(
            PluginCall.objects.filter(run_id=run.pk, id__gt=after).order_by("id")[: RUN_CALLS_MAX + 1]
        )
        data = PluginCallSerializer(rows[:RUN_CALLS_MAX], many=True).data
        return Response({"results": data, "more": len(rows) > RUN_CALLS_MAX})
