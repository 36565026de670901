from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy
from rest_framework.authtoken.models import Token

from core.audit import acting_as
from core.errors import Conflict, DomainError
from rbac.models import Department, Role, RoleBinding

DEMO_ADMIN_PASSWORD = "admin"  # printed by `make demo`; refused with DEBUG off unless explicitly allowed


class InvalidCredentials(DomainError):
    status = 400
    code = "invalid_credentials"
    message = gettext_lazy("Unable to sign in with the given username and password.")


def token_issue(*, request: HttpRequest, username: str, password: str) -> Token:
    """The API token of the user with these credentials (created on first use)."""
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials()
    token, _ = Token.objects.get_or_create(user=user)
    return token


def user_ensure(
    *, username: str, password: str, email: str = "", superuser: bool = False
) -> tuple[User, bool]:
    """The user ``username``, created with ``password`` if missing; returns (user, created).

    An existing user is left exactly as it is (its password included): seeding twice changes nothing.
    """
    model = get_user_model()
    existing = model.objects.filter(username=username).first()
    if existing is not None:
        return existing, False
    create = model.objects.create_superuser if superuser else model.objects.create_user
    return create(username=username, email=email, password=password), True


class DemoPasswordRefused(Exception):
    """A password printed in the README was about to protect an account on a server with DEBUG off."""


def demo_passwords_allowed(*, allow: bool) -> None:
    """Raise ``DemoPasswordRefused`` unless DEBUG is on or the operator explicitly allowed demo passwords."""
    if not settings.DEBUG and not allow:
        raise DemoPasswordRefused(
            "refusing a demo password with DEBUG off: pass a real password, or allow demo passwords"
        )


# --- the policy: roles, bindings, departments (the policy API, the admin's rules) ---------------------


class PolicyInvalid(DomainError):
    """Input a serializer cannot judge alone; ``detail`` maps each field to its problems, as DRF does."""

    status = 400
    code = "invalid"
    message = gettext_lazy("Invalid input.")

    def __init__(self, detail: dict[str, list[str]]) -> None:
        super().__init__(detail=detail)


class StillReferenced(Conflict):
    code = "still_referenced"
    message = gettext_lazy("Other records still refer to this one.")


def _save(obj: models.Model, update_fields: Iterable[str] | None = None) -> None:
    """Save in a savepoint: a unique value taken by a concurrent write is a 409, not a 500."""
    try:
        with transaction.atomic():
            obj.save(update_fields=list(update_fields) if update_fields is not None else None)
    except IntegrityError as exc:
        raise Conflict("A record with these values already exists.", code="duplicate") from exc


def _delete(obj: models.Model) -> None:
    try:
        with transaction.atomic():
            obj.delete()
    except models.ProtectedError as exc:
        names = sorted({f"{type(o)._meta.verbose_name}: {o}" for o in exc.protected_objects})[:20]
        raise StillReferenced(detail={"protected": names}) from exc


def _assign(obj: models.Model, changes: dict[str, Any]) -> list[str]:
    """Set the changed values on ``obj``; the names of the fields that changed."""
    changed = [name for name, value in changes.items() if getattr(obj, name) != value]
    for name in changed:
        setattr(obj, name, changes[name])
    return changed


def role_create(*, actor: Any, slug: str, name: str, description: str = "") -> Role:
    role = Role(slug=slug, name=name, description=description)
    with acting_as(actor):
        _save(role)
    return role


def role_update(*, actor: Any, role: Role, changes: dict[str, Any]) -> Role:
    """Change a role's ``slug``, ``name`` or ``description`` (the keys of ``changes``)."""
    changed = _assign(role, changes)
    if changed:
        with acting_as(actor):
            _save(role, changed)
    return role


def role_delete(*, actor: Any, role: Role) -> None:
    """Delete a role with its bindings and grants (each delete audited)."""
    with acting_as(actor), transaction.atomic():
        _delete(role)


def _check_subject(user: Any, department: Department | None, include_descendants: bool) -> None:
    both_or_neither = "Name exactly one of a user or a department."
    if (user is None) == (department is None):
        raise PolicyInvalid({"user": [both_or_neither], "department": [both_or_neither]})
    if include_descendants and department is None:
        raise PolicyInvalid(
            {"include_descendants": ["Only a department binding can include sub-departments."]}
        )


def binding_create(
    *,
    actor: Any,
    role: Role,
    user: Any = None,
    department: Department | None = None,
    include_descendants: bool = False,
    expires_at: datetime | None = None,
) -> RoleBinding:
    """Bind ``role`` to one user or one department; ``created_by`` is ``actor``."""
    _check_subject(user, department, include_descendants)
    binding = RoleBinding(
        role=role,
        user=user,
        department=department,
        include_descendants=include_descendants,
        expires_at=expires_at,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    with acting_as(actor):
        _save(binding)
    return binding


def binding_update(*, actor: Any, binding: RoleBinding, changes: dict[str, Any]) -> RoleBinding:
    """Change a binding's role, subject, ``include_descendants`` or ``expires_at``; the result must still
    name exactly one subject."""
    merged = {
        name: changes.get(name, getattr(binding, name))
        for name in ("user", "department", "include_descendants")
    }
    _check_subject(merged["user"], merged["department"], merged["include_descendants"])
    changed = _assign(binding, changes)
    if changed:
        with acting_as(actor):
            _save(binding, changed)
    return binding


def binding_delete(*, actor: Any, binding: RoleBinding) -> None:
    with acting_as(actor):
        _delete(binding)


def department_create(
    *,
    actor: Any,
    slug: str,
    name: str,
    parent: Department | None = None,
    members: Iterable[Any] = (),
) -> Department:
    department = Department(slug=slug, name=name, parent=parent)
    with acting_as(actor), transaction.atomic():
        _save(department)
        department.members.set(list(members))
    return department


def department_move(*, actor: Any, department: Department, parent: Department | None) -> Department:
    """Put ``department`` (and so its whole subtree) under ``parent``; never under itself or its own."""
    if department.parent_id == getattr(parent, "pk", None):
        return department
    previous = department.parent_id
    department.parent = parent
    try:
        department.clean()  # the admin's rule: no cycles
    except ValidationError as exc:
        department.parent_id = previous
        raise PolicyInvalid(exc.message_dict) from None
    with acting_as(actor):
        _save(department, ["parent"])
    return department


@transaction.atomic
def department_update(
    *, actor: Any, department: Department, changes: dict[str, Any], members: Iterable[Any] | None = None
) -> Department:
    """Change a department's ``slug`` / ``name``, move it (``parent`` in ``changes``), and replace its
    members when ``members`` is given."""
    changes = dict(changes)
    if "parent" in changes:
        department_move(actor=actor, department=department, parent=changes.pop("parent"))
    changed = _assign(department, changes)
    with acting_as(actor):
        if changed:
            _save(department, changed)
        if members is not None:
            department.members.set(list(members))
    return department


def department_delete(*, actor: Any, department: Department) -> None:
    """Delete an empty-handed department: one with sub-departments or projects is refused (409)."""
    with acting_as(actor), transaction.atomic():
        _delete(department)
