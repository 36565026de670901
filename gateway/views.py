"""The tool gateway's endpoint, ``POST /api/runs/{id}/tools/{plugin}`` (the work: ``gateway.calls``)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.throttling import client_address
from gateway import calls

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
