from django.conf import settings
from django.db import models


class Department(models.Model):
    """A node in the organisation tree; people are members of departments."""

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
