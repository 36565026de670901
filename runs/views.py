from __future__ import annotations

import uuid

import structlog
from django.http import Http404
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.projects import project_for
from agents.selectors import app_for_use
from core import params
from core.errors import Forbidden
from core.throttling import UserRateThrottle
from runs import live, services
from runs.inbox import inbox_channel
from runs.models import HumanLoopRequest, HumanLoopStatus, Run, RunStatus
from runs.selectors import readable_run, run_history
from runs.serializers import (
    EventPageSerializer,
    HumanLoopPendingSerializer,
    HumanLoopReplySerializer,
    HumanLoopRequestSerializer,
    RunEventSerializer,
    RunListItemSerializer,
    RunSerializer,
    RunStartSerializer,
    TodoSerializer,
)
from runs.sse import EventStreamRenderer, last_event_ids, stream_channel, stream_hints, take_stream_slot
from runs.streaming import encode, run_channel, todos_channel

EVENT_PAGE_MAX = 1000
RUN_RELATED = ("app", "project", "prompt_version")  # what RunSerializer reads
SSE_DESCRIPTION = (
    "Server-Sent Events. Each event's `id` is `run-<id>:<seq>`; reconnect with `Last-Event-ID` (or "
    "`?lastEventId=`) to get exactly the events after it. Without an id the stream starts with the whole "
    "history."
)


def visible_run(request: Request, run_id) -> Run:
    """The run if the user may read it; a run they may not read is a 404, like a missing one."""
    run = readable_run(request.user, run_id, related=(*RUN_RELATED, "executor"))
    if run is None:
        raise Http404
    return run


def owned_run(request: Request, run_id) -> Run:
    """The run if the user may act on it (cancel): its owner or a superuser. A reader (``run.view_all``)
    who may not is told so (403); anyone else gets the 404 of a missing run."""
    run = visible_run(request, run_id)
    if not (request.user.is_superuser or run.user_id == request.user.pk):
        raise NotRunOwner()
    return run


class NotRunOwner(Forbidden):
    code = "not_run_owner"
    message = gettext_lazy("Only the person who started this run may do this.")


def _start(request: Request, run_id: uuid.UUID | None = None) -> tuple[Run, bool]:
    serializer = RunStartSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    key = params.text(request.headers.get("Idempotency-Key", ""), name="Idempotency-Key", max_length=200)
    app = app_for_use(user=request.user, slug=data["app"])
    project = project_for(user=request.user, slug=data["project"]) if data.get("project") else None
    run, created = services.run_start(
        user=request.user,
        app=app,
        input=data["input"],
        session_id=data.get("session_id"),
        multitask=data["multitask"],
        idempotency_key=key,
        run_id=run_id,
        project=project,
    )
    # The request's log lines from here on (request_finished among them) name the run.
    structlog.contextvars.bind_contextvars(
        run_id=str(run.pk), session_id=str(run.session_id), trace_id=run.trace_id
    )
    return run, created


def queued_block(run: Run) -> live.Block:
    """The run.queued event ``run_start`` stored for a new run, as its stream sends it."""
    channel = run_channel(run.pk)
    return live.make_block(channel, 1, "run.queued", encode(services.queued_event_data(run)))


class StreamView(APIView):
    """An SSE endpoint: content negotiation may pick the event-stream renderer, but errors are JSON."""

    renderer_classes = [EventStreamRenderer, JSONRenderer]

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class RunListCreateView(generics.ListAPIView):
    serializer_class = RunListItemSerializer

    def get_throttles(self):
        return [UserRateThrottle()] if self.request.method == "POST" else []

    def get_queryset(self):
        query = self.request.query_params
        scope = params.choice(query.get("scope") or "mine", name="scope", choices=["mine", "visible"])
        if scope == "visible":  # with run.view_all, others' runs of those apps too
            runs = Run.objects.visible_to(self.request.user)
        else:
            runs = Run.objects.filter(user_id=self.request.user.pk or 0)
        runs = runs.select_related(*RUN_RELATED, "user")
        if query.get("status"):
            runs = runs.filter(status=params.choice(query["status"], name="status", choices=RunStatus.values))
        if query.get("app"):
            runs = runs.filter(app__slug=params.slug(query["app"], name="app"))
        if query.get("session"):
            runs = runs.filter(session_id=params.uuid_value(query["session"], name="session"))
        if query.get("created_after"):
            runs = runs.filter(created_at__gte=params.moment(query["created_after"], name="created_after"))
        if query.get("created_before"):
            runs = runs.filter(created_at__lt=params.moment(query["created_before"], name="created_before"))
        return runs.order_by("-created_at", "-pk")  # a total order: pages neither repeat nor skip a run

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "scope", str, description="mine (default), or visible: also others' runs I may read"
            ),
            OpenApiParameter("status", str, description="queued, running, waiting_human, succeeded, ..."),
            OpenApiParameter("app", str, description="app slug"),
            OpenApiParameter("session", OpenApiTypes.UUID),
            OpenApiParameter(
                "created_after",
                str,
                description="Runs created at or after this ISO 8601 date or datetime (a date is its first "
                "instant; without an offset, the server's TIME_ZONE)",
            ),
            OpenApiParameter(
                "created_before",
                str,
                description="Runs created before this ISO 8601 date or datetime (exclusive: "
                "created_before=2026-12-02 ends with 1 December)",
            ),
        ],
        summary="My runs (or every run I may read)",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=RunStartSerializer,
        responses={201: RunSerializer, 200: RunSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        summary="Start a run (queued; watch it at events_url)",
    )
    def post(self, request: Request) -> Response:
        run, created = _start(request)
        return Response(
            RunSerializer(run).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class RunStartStreamView(StreamView):
    throttle_classes = [UserRateThrottle]

    @extend_schema(
        request=RunStartSerializer,
        responses={(200, "text/event-stream"): OpenApiTypes.STR},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        summary="Start a run and stream its events in the same response",
        description=SSE_DESCRIPTION,
    )
    def post(self, request: Request):
        last_event_ids(request._request)  # a malformed id is refused before the run is created
        # Listen before the run exists: everything published for it reaches the stream, which then needs
        # no storage read for a new run (its history is the run.queued event created here).
        run_id = uuid.uuid4()
        free = take_stream_slot(request._request)  # before the run exists: a refusal starts nothing
        hub = live.hub()
        listener = hub.preregister(run_channel(run_id))
        try:
            run, created = _start(request, run_id=run_id)
        except BaseException:
            free()
            if listener is not None:
                hub.remove(listener)
            raise
        if listener is not None and run.pk != run_id:  # an Idempotency-Key's earlier run
            hub.remove(listener)
            listener = None
        known = [queued_block(run)] if created else None
        channel = run_channel(run.pk)
        response = stream_channel(
            request._request, channel, end_on_finish=True, listener=listener, known=known, free=free
        )
        response["X-Run-ID"] = str(run.pk)
        return response


class RunDetailView(APIView):
    @extend_schema(responses=RunSerializer, summary="A run")
    def get(self, request: Request, run_id) -> Response:
        return Response(RunSerializer(visible_run(request, run_id)).data)


class RunCancelView(APIView):
    @extend_schema(request=None, responses=RunSerializer, summary="Cancel a run")
    def post(self, request: Request, run_id) -> Response:
        # Recorded here; the worker holding the run tells the executor (within a second while events
        # flow, at the executor's next keep-alive while it is quiet). No web thread waits on an executor.
        run = services.run_cancel(run=owned_run(request, run_id))
        return Response(RunSerializer(run).data)


class RunEventsView(StreamView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "after", int, description="JSON paging instead of SSE: the events after this seq"
            ),
            OpenApiParameter(
                "limit", int, description=f"page size with ?after (default 100, at most {EVENT_PAGE_MAX})"
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiTypes.STR,
            (200, "application/json"): EventPageSerializer,
        },
        summary="A run's events: SSE, or JSON pages with ?after=N",
        description=SSE_DESCRIPTION,
    )
    def get(self, request: Request, run_id):
        run = visible_run(request, run_id)
        if "after" not in request.query_params:
            return stream_channel(request._request, run_channel(run.pk), end_on_finish=True)
        after = params.integer(request.query_params["after"], name="after", default=0)
        limit = params.integer(
            request.query_params.get("limit"), name="limit", default=100, minimum=1, maximum=EVENT_PAGE_MAX
        )
        rows = list(run_history(run.pk, after=after)[: limit + 1])
        page = rows[:limit]
        body = {
            "events": RunEventSerializer(page, many=True).data,
            "next_after": page[-1].seq if page else after,
            "has_more": len(rows) > limit,
            "run_status": run.status,
        }
        return Response(body, content_type="application/json")


class RunTodosView(APIView):
    @extend_schema(responses=TodoSerializer(many=True), summary="A run's todo list")
    def get(self, request: Request, run_id) -> Response:
        run = visible_run(request, run_id)
        return Response(TodoSerializer(run.todos.all(), many=True).data)


class RunTodoEventsView(StreamView):
    @extend_schema(
        responses={(200, "text/event-stream"): OpenApiTypes.STR},
        summary="A run's todo.update events over SSE",
        description=SSE_DESCRIPTION,
    )
    def get(self, request: Request, run_id):
        run = visible_run(request, run_id)
        return stream_channel(request._request, todos_channel(run.pk), end_on_finish=True)


class HumanLoopPendingView(generics.ListAPIView):
    serializer_class = HumanLoopPendingSerializer

    def get_queryset(self):
        user = self.request.user
        raw = self.request.query_params.get("scope") or "answerable"
        scope = params.choice(raw, name="scope", choices=["answerable", "mine"])
        runs = Run.objects.filter(user_id=user.pk or 0) if scope == "mine" else Run.objects.owned_by(user)
        return (
            HumanLoopRequest.objects.filter(status=HumanLoopStatus.PENDING, run__in=runs.active())
            .select_related("run__app")
            .only(*PENDING_COLUMNS)
            .order_by("created_at")
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "scope",
                str,
                description="answerable (default): on every run I may answer (a superuser's: all); "
                "mine: on my own runs only, what my inbox stream (/api/human-loop/events) tells me about",
            )
        ],
        summary="Questions waiting for an answer, oldest first",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# What HumanLoopPendingSerializer reads: the question, its run's session and app.
PENDING_COLUMNS = (
    *("id", "run_id", "external_id", "question", "options", "status", "answer", "answered_at", "created_at"),
    *("run__id", "run__session_id", "run__app__id", "run__app__slug", "run__app__name"),
)


class HumanLoopEventsView(StreamView):
    @extend_schema(
        responses={(200, "text/event-stream"): OpenApiTypes.STR},
        summary="My inbox, live: a hint whenever the questions waiting for me may have changed",
        description=(
            "Server-Sent Events on the caller's own channel. Each `inbox.changed` event is a hint "
            '(`{"run_id", "request_id"?, "reason"}`), not the change itself: read '
            "`GET /api/human-loop/pending?scope=mine` when the stream opens and after hints. The stream "
            "sends a hint of its own (`reason: resync`) whenever it may have missed one. No ids, no history."
        ),
    )
    def get(self, request: Request):
        return stream_hints(request._request, inbox_channel(request.user.pk or 0))  # signed in: never 0


class HumanLoopReplyView(APIView):
    @extend_schema(
        request=HumanLoopReplySerializer,
        responses={
            200: HumanLoopRequestSerializer,
            404: OpenApiResponse(description="Unknown request"),
            409: OpenApiResponse(description="Already answered"),
        },
        summary="Answer an agent's question",
    )
    def post(self, request: Request) -> Response:
        serializer = HumanLoopReplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        answered = services.human_loop_reply(user=request.user, **serializer.validated_data)
        return Response(HumanLoopRequestSerializer(answered).data)
