from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.selectors import prompt_payload
from runs.models import HumanLoopRequest, Run, RunEvent, Todo


class RunStartSerializer(serializers.Serializer):
    app = serializers.SlugField(help_text="The app's slug.")
    input = serializers.JSONField(default=dict, help_text="The run's input (a JSON object).")
    session_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="Continue this session; omit to start a new one."
    )
    multitask = serializers.ChoiceField(
        choices=["reject", "enqueue"],
        default="reject",
        help_text="When the session has an active run: refuse (409) or queue.",
    )
    project = serializers.SlugField(
        required=False,
        allow_null=True,
        max_length=100,
        help_text="The project (slug) a new session works in; a continued session stays in its own.",
    )

    def validate_input(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class RunSerializer(serializers.ModelSerializer):
    app: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    session_id = serializers.UUIDField(read_only=True)
    project: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, help_text="The project's slug; null: none."
    )
    settings = serializers.JSONField(
        read_only=True,
        help_text='The effective settings the run started with; secrets only by name, under "$secrets".',
    )
    prompt_version = serializers.SerializerMethodField(help_text="The prompt version's number; null: none.")
    events_url = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "id",
            "app",
            "session_id",
            "project",
            "prompt_version",
            "settings",
            "status",
            "input",
            "error_class",
            "error_detail",
            "trace_id",
            "last_seq",
            "attempts",
            "cancel_requested",
            "created_at",
            "started_at",
            "finished_at",
            "events_url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_prompt_version(self, run: Run) -> int | None:
        if run.prompt_version_id is None:
            return None
        if Run.prompt_version.is_cached(run) and run.prompt_version is not None:
            return run.prompt_version.number
        number = prompt_payload(run.prompt_version_id)["version"]  # cached: versions never change
        return number if isinstance(number, int) else None

    def get_events_url(self, run: Run) -> str:
        return f"/api/runs/{run.pk}/events"


class RunListItemSerializer(RunSerializer):
    """A run in a list that may hold others' runs (``scope=visible``): it names whose run it is."""

    user = serializers.CharField(source="user.username", read_only=True, help_text="Who started it.")

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "user"]
        read_only_fields = fields


class RunEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunEvent
        fields = ["seq", "type", "data", "created_at"]
        read_only_fields = fields


class EventPageSerializer(serializers.Serializer):
    events = RunEventSerializer(many=True)
    next_after = serializers.IntegerField(help_text="Pass as ?after= to get the next page.")
    has_more = serializers.BooleanField()
    run_status = serializers.CharField()


class TodoSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="todo_id")

    class Meta:
        model = Todo
        fields = ["id", "title", "status", "position", "updated_seq"]
        read_only_fields = fields


class HumanLoopRequestSerializer(serializers.ModelSerializer):
    request_id = serializers.UUIDField(source="id", read_only=True)
    run_id = serializers.UUIDField(read_only=True)
    event_request_id = serializers.CharField(
        source="external_id", read_only=True, help_text="The `request_id` of its `human_loop.request` event."
    )

    class Meta:
        model = HumanLoopRequest
        fields = [
            "request_id",
            "run_id",
            "event_request_id",
            "question",
            "options",
            "status",
            "answer",
            "answered_at",
            "created_at",
        ]
        read_only_fields = fields


class PendingAppSerializer(serializers.Serializer):
    slug = serializers.SlugField(read_only=True)
    name = serializers.CharField(read_only=True)


class HumanLoopPendingSerializer(HumanLoopRequestSerializer):
    """A question in the inbox: with what the inbox shows beside it (the app, the conversation)."""

    app = PendingAppSerializer(source="run.app", read_only=True)
    session_id = serializers.UUIDField(source="run.session_id", read_only=True)

    class Meta(HumanLoopRequestSerializer.Meta):
        fields = [*HumanLoopRequestSerializer.Meta.fields, "app", "session_id"]
        read_only_fields = fields


class HumanLoopReplySerializer(serializers.Serializer):
    request_id = serializers.CharField(
        max_length=100,
        help_text="The `request_id` of the `human_loop.request` event on the run's stream (with `run_id`), "
        "or the `request_id` from `GET /api/human-loop/pending`.",
    )
    run_id = serializers.UUIDField(
        required=False,
        help_text="The run that asked: needed with an event's `request_id` when it is ambiguous.",
    )
    answer = serializers.CharField(max_length=20_000, trim_whitespace=False)
