from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import App


class AppSerializer(serializers.ModelSerializer):
    """An app-store entry as the store shows it."""

    usable = serializers.BooleanField(read_only=True, help_text="Whether I may start runs of it.")
    prompt_editable = serializers.BooleanField(
        read_only=True, help_text="Whether I may save and activate its prompt versions (prompt.edit)."
    )
    all_runs_readable = serializers.BooleanField(
        read_only=True, help_text="Whether I may read everyone's runs of it (run.view_all)."
    )
    icon_url = serializers.SerializerMethodField(help_text="The uploaded icon; null: draw the glyph.")
    active_prompt_version = serializers.IntegerField(
        source="active_prompt.number", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = App
        fields = [
            "slug",
            "name",
            "description",
            "category",
            "tags",
            "glyph",
            "icon_url",
            "plugins",
            "enabled",
            "usable",
            "prompt_editable",
            "all_runs_readable",
            "active_prompt_version",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_icon_url(self, app: App) -> str | None:
        return f"/api/apps/{app.slug}/icon" if app.icon else None


class AppDetailSerializer(AppSerializer):
    actions = serializers.SerializerMethodField(help_text="What I may do with it (app.see, app.use, ...).")
    settings_schema = serializers.JSONField(read_only=True)

    class Meta(AppSerializer.Meta):
        fields = [*AppSerializer.Meta.fields, "actions", "settings_schema"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_actions(self, app: App) -> list[str]:
        return sorted(self.context["actions"])
