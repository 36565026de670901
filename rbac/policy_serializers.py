"""The policy API's shapes: roles, bindings and departments, naming each other by slug and users by
username (what the policy file uses too)."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from rbac.models import Department, Role, RoleBinding


class RoleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Role
        fields = ["slug", "name", "description", "created_at"]
        read_only_fields = ["created_at"]


class BindingSerializer(serializers.ModelSerializer):
    role: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", queryset=Role.objects.all()
    )
    user: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        allow_null=True,
        required=False,
        help_text="The user given the role; or name a department instead.",
    )
    department: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Department.objects.all(),
        allow_null=True,
        required=False,
        help_text="The department whose members get the role; or name a user instead.",
    )
    created_by: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    expired = serializers.SerializerMethodField()

    class Meta:
        model = RoleBinding
        fields = [
            "id",
            "role",
            "user",
            "department",
            "include_descendants",
            "expires_at",
            "expired",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["id", "created_by", "created_at"]
        validators: list = []  # the subject rule is the service's (rbac.services.binding_create)

    def get_expired(self, binding: RoleBinding) -> bool:
        now = self.context["now"]
        return binding.expires_at is not None and binding.expires_at <= now


class DepartmentSerializer(serializers.ModelSerializer):
    # DRF pops declared fields off the class, so this does not shadow Field.parent at runtime.
    parent = serializers.SlugRelatedField(  # type: ignore[assignment]
        slug_field="slug",
        queryset=Department.objects.all(),
        allow_null=True,
        required=False,
        help_text="The department above; changing it moves this one with everything below it.",
    )
    members = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        many=True,
        required=False,
        help_text="Usernames; a change replaces the whole list.",
    )

    class Meta:
        model = Department
        fields = ["slug", "name", "parent", "members", "created_at"]
        read_only_fields = ["created_at"]
