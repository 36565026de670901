"""Roots of the file browser, who may read under them, and the audit of every access."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class FileRoot(models.Model):
    """A directory the portal serves read-only. Declared in the admin or in the ``FILE_ROOTS`` setting
    (``manage.py file_roots --sync`` writes those here and marks them ``from_settings``)."""

    name = models.SlugField(max_length=100, unique=True, help_text="Its name in URLs (/api/files/<name>/…).")
    path = models.CharField(max_length=1024, help_text="An absolute path to an existing directory.")
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    from_settings = models.BooleanField(
        default=False, editable=False, help_text="Declared in FILE_ROOTS: its path is changed there."
    )
    project = models.OneToOneField(
        "agents.Project",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="workspace_root",
        help_text="The project whose workspace this is (reading it still takes a file ACL).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        problem = root_path_problem(self.path)
        if problem:
            raise ValidationError({"path": problem})


def root_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be a root (the admin's validation and the system check), or None."""
    if not path or not os.path.isabs(path):
        return "Must be an absolute path."
    if "\x00" in path:
        return "Must not contain NUL."
    if not os.path.isdir(path):
        return "No such directory on this machine."
    return None


class Permission(models.TextChoices):
    LIST = "list", "List (see names, sizes, dates)"
    READ = "read", "Read (download; implies list)"


class FileACL(models.Model):
    """Grants a role ``list`` or ``read`` on everything under ``path_prefix`` of a root. The prefix is
    matched by whole path components: ``reports`` covers ``reports/2026/q1.csv``, not ``reports-x``."""

    root = models.ForeignKey(FileRoot, on_delete=models.CASCADE, related_name="acls")
    path_prefix = models.CharField(
        max_length=1024,
        blank=True,
        help_text="A path under the root, without leading or trailing /; empty: the whole root.",
    )
    role = models.ForeignKey("rbac.Role", on_delete=models.CASCADE, related_name="file_acls")
    permission = models.CharField(max_length=10, choices=Permission.choices, default=Permission.READ)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["root", "path_prefix", "role"]
        verbose_name = "file ACL"
        constraints = [
            models.UniqueConstraint(
                fields=["root", "path_prefix", "role", "permission"], name="files_acl_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} may {self.permission} {self.root}:/{self.path_prefix}"

    def clean(self) -> None:
        from files.paths import InvalidPath, parse

        try:
            self.path_prefix = "/".join(parse(self.path_prefix, allow_empty=True))
        except InvalidPath as error:
            raise ValidationError({"path_prefix": str(error.message)}) from None


class Action(models.TextChoices):
    LIST = "list"
    STAT = "stat"
    DOWNLOAD = "download"


class Outcome(models.TextChoices):
    ALLOWED = "allowed"
    DENIED = "denied"  # no ACL covers it (answered 404, like a missing file)
    NOT_FOUND = "not_found"  # missing, a symlink, not the kind of entry asked for
    INVALID = "invalid"  # the path was refused before the disk was touched
    ERROR = "error"  # the disk failed, or a download stopped before its last byte


class FileAccessEvent(models.Model):
    """One list, stat or download, whatever became of it. Append-only: written in autocommit (the file
    views hold no transaction), never changed; on PostgreSQL a trigger refuses UPDATE and DELETE. Users
    and roots are kept without a foreign key constraint (and with a name snapshot): rows outlive both.
    A download that stops early adds a second row (outcome ``error``) with the bytes actually sent."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    root = models.ForeignKey(
        FileRoot, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    root_name = models.CharField(max_length=200, help_text="As requested.")
    requested_path = models.TextField(blank=True, help_text="As given (control characters escaped).")
    resolved_path = models.TextField(blank=True, help_text="The file on disk, when one was opened.")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=100, blank=True)
    status = models.PositiveSmallIntegerField(help_text="The HTTP status answered.")
    range = models.CharField(max_length=200, blank=True, help_text="The Range header, as sent.")
    bytes_sent = models.BigIntegerField(default=0)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    request_id = models.CharField(max_length=100, blank=True)
    trace_id = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "file access"
        verbose_name_plural = "file accesses"
        indexes = [
            models.Index(fields=["user", "created_at"], name="files_event_user_idx"),
            models.Index(fields=["root", "created_at"], name="files_event_root_idx"),
            models.Index(fields=["outcome", "created_at"], name="files_event_outcome_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.username or '-'} {self.action} {self.root_name}:/{self.requested_path} {self.outcome}"
