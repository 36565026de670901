"""Subjects and roles: who people are (users, departments) and which roles they hold.

Nothing here knows what a role allows: each domain keeps its own grants on roles (``agents.AppGrant``,
``files.FileACL``) and asks ``rbac.selectors.roles_held`` which roles a user holds now.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


class Department(models.Model):
    """A node in the organisation tree; people are members of departments.

    Access follows the tree as it is now: nothing is copied down it, so moving a department (changing its
    parent) moves its whole subtree's inherited access in one write."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="departments")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from rbac.selectors import department_subtree_ids

        if self.parent_id is None:
            return
        if self.pk is not None and self.parent_id in department_subtree_ids(self.pk):
            raise ValidationError({"parent": "A department cannot sit under itself or one of its own."})


class Role(models.Model):
    """A named set of permissions; what it permits is granted by each domain (app grants, file ACLs)."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RoleBinding(models.Model):
    """A role given to one user, or to the members of one department (and, with ``include_descendants``,
    to the members of every department below it)."""

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="bindings")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="role_bindings",
    )
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.CASCADE, related_name="role_bindings"
    )
    include_descendants = models.BooleanField(
        default=False, help_text="Also the members of every department below this one."
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["role", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(department__isnull=True))
                | (Q(user__isnull=True) & Q(department__isnull=False)),
                name="rbac_binding_one_subject",
                violation_error_message="A binding names exactly one of a user or a department.",
            ),
            models.CheckConstraint(
                condition=Q(include_descendants=False) | Q(department__isnull=False),
                name="rbac_binding_descendants_need_department",
                violation_error_message="Only a department binding can include sub-departments.",
            ),
        ]
        indexes = [
            models.Index(fields=["user"], name="rbac_binding_user_idx", condition=Q(user__isnull=False)),
            models.Index(
                fields=["department"], name="rbac_binding_dept_idx", condition=Q(department__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        subject = f"user {self.user}" if self.user_id else f"department {self.department}"
        return f"{self.role} → {subject}"

    @property
    def subject(self) -> str:
        if self.user_id:
            return f"user:{self.user}"
        return f"department:{self.department}" + ("/**" if self.include_descendants else "")
