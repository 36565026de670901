from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import PromptActivation, PromptVersion
from agents.prompts import MESSAGE_MAX, PARAMETERS_MAX_BYTES, REASON_MAX, TEXT_MAX


class PromptVersionSerializer(serializers.ModelSerializer):
    """A saved version; ``context["active_id"]`` is the app's active version's id."""

    author: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    active = serializers.SerializerMethodField(help_text="Whether new runs start with this version.")

    class Meta:
        model = PromptVersion
        fields = ["number", "text", "parameters", "message", "author", "created_at", "active"]
        read_only_fields = fields

    def get_active(self, version: PromptVersion) -> bool:
        return version.pk == self.context["active_id"]


class PromptVersionDetailSerializer(PromptVersionSerializer):
    """A version with its diff against the active one (``context["diff"]``, ``context["active_number"]``)
    and against the one asked for (``context["against"]``, ``context["diff_against"]``)."""

    diff_against_active = serializers.SerializerMethodField(
        help_text="Unified diff from the active version to this one; empty for the active one or none."
    )
    active_version = serializers.SerializerMethodField(help_text="The active version's number, or null.")
    against = serializers.SerializerMethodField(
        help_text="The version `diff` starts from (`?against=N`, else the active one); null: none."
    )
    diff = serializers.SerializerMethodField(
        help_text="Unified diff from `against` to this version; empty when they are the same or none."
    )

    class Meta(PromptVersionSerializer.Meta):
        fields = [
            *PromptVersionSerializer.Meta.fields,
            "diff_against_active",
            "active_version",
            "against",
            "diff",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_against(self, version: PromptVersion) -> int | None:
        against = self.context["against"]
        return against.number if against is not None else None

    def get_diff(self, version: PromptVersion) -> str:
        return self.context["diff_against"]

    def get_diff_against_active(self, version: PromptVersion) -> str:
        return self.context["diff"]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_active_version(self, version: PromptVersion) -> int | None:
        return self.context["active_number"]


class PromptVersionCreateSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=TEXT_MAX, trim_whitespace=False, help_text="The prompt.")
    parameters = serializers.JSONField(
        required=False, help_text=f"A JSON object of at most {PARAMETERS_MAX_BYTES} bytes."
    )
    message = serializers.CharField(
        max_length=MESSAGE_MAX, required=False, allow_blank=True, help_text="What changed."
    )
    activate = serializers.BooleanField(
        default=False, help_text="Also make it the active version (an app's first version always is)."
    )
    reason = serializers.CharField(
        max_length=REASON_MAX, required=False, allow_blank=True, help_text="Why, when activating."
    )


class PromptActivateSerializer(serializers.Serializer):
    reason = serializers.CharField(
        min_length=1, max_length=REASON_MAX, help_text="Why (the history shows it)."
    )


class PromptActivationSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number", read_only=True)
    previous = serializers.IntegerField(
        source="previous.number", read_only=True, allow_null=True, default=None
    )
    activated_by: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = PromptActivation
        fields = ["version", "previous", "reason", "activated_by", "created_at"]
        read_only_fields = fields


class PromptActivatedSerializer(serializers.Serializer):
    active_version = PromptVersionSerializer(read_only=True)
    activation = PromptActivationSerializer(read_only=True)
