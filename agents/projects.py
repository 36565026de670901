"""Projects: named workspaces owned by a department. Who may work in one, and making one.

A member of a project's department works in it, and so does a member of any department below it: the
selector asks for the projects whose department is one of the user's departments or above one of them,
walking the tree in SQL (``rbac.selectors.department_ids_up_from``), so a list is one statement however
deep the tree is. Superusers work in every project.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy

from agents.models import Project
from core.errors import Conflict, Forbidden, NotFound
from rbac.models import Department
from rbac.selectors import department_ids_up_from, is_member_at_or_above


def projects_for(user) -> QuerySet[Project]:
    """The projects ``user`` may work in, as one statement."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(department_id__in=department_ids_up_from(user))


def project_not_found() -> NotFound:
    """The one answer for a project that does not exist and for one the user may not work in."""
    return NotFound("No such project.", code="project_not_found")


def project_for(*, user, slug: str) -> Project:
    """The project ``slug`` if ``user`` may work in it; else the 404 of a missing project."""
    project = projects_for(user).filter(slug=slug).first()
    if project is None:
        raise project_not_found()
    return project


def may_work_in(user, project_id: int) -> bool:
    return projects_for(user).filter(pk=project_id).exists()


class NotInDepartment(Forbidden):
    code = "not_in_department"
    message = gettext_lazy("Only members of the department (or of one above it) may make its projects.")


class ProjectExists(Conflict):
    code = "project_exists"
    message = gettext_lazy("A project with this slug exists already.")


def project_create(*, slug: str, name: str, description: str = "", department: Department, user) -> Project:
    """Make a project owned by ``department``: superusers may, and members of the department or of one
    above it."""
    if not user.is_superuser and not is_member_at_or_above(user, department.pk):
        raise NotInDepartment(detail={"department": department.slug})
    try:
        with transaction.atomic():
            return Project.objects.create(
                slug=slug, name=name, description=description, department=department, created_by=user
            )
    except IntegrityError:
        raise ProjectExists(detail={"slug": [f"{slug!r} is taken."]}) from None
