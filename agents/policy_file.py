"""The access policy as a file (``manage.py policy export`` / ``policy import``): roles, departments,
bindings and app grants as sorted, indented JSON, to review in git and apply elsewhere.

Rows are named, never numbered: roles, departments and apps by slug, users by username. A binding is
identified by its role and subject (user or department); a grant by role, action and app. An import checks
the whole file first (its JSON Schema, then every name it refers to) and applies nothing when any check
fails; then it applies the file in one transaction. Without ``prune`` nothing is deleted; with it, roles,
bindings and grants absent from the file are. Departments are never deleted by an import (projects hang
on them). Users and apps are not created: the file names existing ones.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jsonschema
from django.contrib.auth import get_user_model
from django.db import transaction

from agents.models import Action, App, AppGrant
from core.audit import acting_as, current_actor
from rbac.models import Department, Role, RoleBinding

VERSION = 1
_PRINTABLE = "^[^\\x00-\\x1f\\x7f]*$"
_SLUG = {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$", "maxLength": 100}
_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": _PRINTABLE}
_USERNAME = {"type": "string", "minLength": 1, "maxLength": 150, "pattern": _PRINTABLE}


def _rows(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    item = {"type": "object", "additionalProperties": False, "required": required, "properties": properties}
    return {"type": "array", "items": item}


SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Access policy (roles, departments, bindings, app grants)",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "roles", "departments", "bindings", "grants"],
    "properties": {
        "version": {"const": VERSION},
        "roles": _rows({"slug": _SLUG, "name": _NAME, "description": {"type": "string"}}, ["slug", "name"]),
        "departments": _rows(
            {
                "slug": _SLUG,
                "name": _NAME,
                "parent": {"anyOf": [_SLUG, {"type": "null"}]},
                "members": {"type": "array", "items": _USERNAME, "uniqueItems": True},
            },
            ["slug", "name"],
        ),
        "bindings": _rows(
            {
                "role": _SLUG,
                "user": {"anyOf": [_USERNAME, {"type": "null"}]},
                "department": {"anyOf": [_SLUG, {"type": "null"}]},
                "include_descendants": {"type": "boolean"},
                "expires_at": {"anyOf": [{"type": "string", "maxLength": 40}, {"type": "null"}]},
            },
            ["role"],
        ),
        "grants": _rows(
            {
                "role": _SLUG,
                "action": {"enum": list(Action.values)},
                "app": {"anyOf": [_SLUG, {"type": "null"}]},
            },
            ["role", "action"],
        ),
    },
}


# --- export -----------------------------------------------------------------------------------------


def _instant(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def policy_export() -> dict[str, Any]:
    """The policy as it is now, every list sorted so two exports of the same policy are equal."""
    departments = Department.objects.select_related("parent").prefetch_related("members")
    bindings = RoleBinding.objects.select_related("role", "user", "department")
    return {
        "version": VERSION,
        "roles": [
            {"slug": r.slug, "name": r.name, "description": r.description}
            for r in Role.objects.order_by("slug")
        ],
        "departments": sorted(
            (
                {
                    "slug": d.slug,
                    "name": d.name,
                    "parent": d.parent.slug if d.parent else None,
                    "members": sorted(m.username for m in d.members.all()),
                }
                for d in departments
            ),
            key=lambda d: d["slug"],
        ),
        "bindings": sorted((_binding_row(b) for b in bindings), key=_binding_sort_key),
        "grants": sorted(
            (
                {"role": g.role.slug, "action": g.action, "app": g.app.slug if g.app else None}
                for g in AppGrant.objects.select_related("role", "app")
            ),
            key=lambda g: (g["role"], g["action"], g["app"] or ""),
        ),
    }


def _binding_row(binding: RoleBinding) -> dict[str, Any]:
    return {
        "role": binding.role.slug,
        "user": binding.user.username if binding.user else None,
        "department": binding.department.slug if binding.department else None,
        "include_descendants": binding.include_descendants,
        "expires_at": _instant(binding.expires_at),
    }


def _binding_sort_key(row: dict[str, Any]) -> tuple:
    return (row["role"], row["user"] or "", row["department"] or "", row["expires_at"] or "")


def policy_dumps(policy: dict[str, Any]) -> str:
    return json.dumps(policy, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- checks -----------------------------------------------------------------------------------------


class PolicyFileInvalid(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


BindingKey = tuple[str, str | None, str | None]
GrantKey = tuple[str, str, str | None]


@dataclass
class Checked:
    """A file that passed every check, with the rows it names already read."""

    policy: dict[str, Any]
    users: dict[str, Any] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    expiries: dict[BindingKey, datetime | None] = field(default_factory=dict)


def _schema_problems(policy: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = []
    for error in sorted(validator.iter_errors(policy), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(str(part) for part in error.absolute_path) or "(file)"
        problems.append(f"{where}: {error.message}")
    return problems


def _duplicates(label: str, keys: list) -> list[str]:
    counts = Counter(keys)
    return [f"{label} listed twice: {key}" for key, count in counts.items() if count > 1]


def binding_key(row: dict[str, Any]) -> BindingKey:
    return (row["role"], row.get("user"), row.get("department"))


def grant_key(row: dict[str, Any]) -> GrantKey:
    return (row["role"], row["action"], row.get("app"))


def _reference_problems(policy: dict[str, Any], checked: Checked) -> list[str]:
    roles = {r["slug"] for r in policy["roles"]}
    departments = {d["slug"] for d in policy["departments"]}
    departments |= set(Department.objects.values_list("slug", flat=True))
    usernames = {m for d in policy["departments"] for m in d.get("members", [])}
    usernames |= {b["user"] for b in policy["bindings"] if b.get("user")}
    checked.users = {u.username: u for u in get_user_model().objects.filter(username__in=usernames)}
    app_slugs = {g["app"] for g in policy["grants"] if g.get("app")}
    checked.apps = {a.slug: a for a in App.objects.filter(slug__in=app_slugs)}
    problems = [f"unknown user: {name}" for name in sorted(usernames - set(checked.users))]
    problems += [f"unknown app: {slug}" for slug in sorted(app_slugs - set(checked.apps))]
    named_roles = {b["role"] for b in policy["bindings"]} | {g["role"] for g in policy["grants"]}
    problems += [f"role not in the file: {slug}" for slug in sorted(named_roles - roles)]
    named = {d.get("parent") for d in policy["departments"]} | {
        b.get("department") for b in policy["bindings"]
    }
    problems += [f"unknown department: {slug}" for slug in sorted(named - departments - {None})]
    return problems


def _binding_problems(policy: dict[str, Any], checked: Checked) -> list[str]:
    problems = []
    for index, row in enumerate(policy["bindings"]):
        where = f"bindings/{index}"
        if bool(row.get("user")) == bool(row.get("department")):
            problems.append(f"{where}: name exactly one of user or department")
        if row.get("include_descendants") and not row.get("department"):
            problems.append(f"{where}: include_descendants needs a department")
        try:
            expires = datetime.fromisoformat(row["expires_at"]) if row.get("expires_at") else None
        except ValueError:
            problems.append(f"{where}/expires_at: not an ISO 8601 date and time: {row['expires_at']!r}")
            continue
        if expires is not None and expires.tzinfo is None:
            problems.append(f"{where}/expires_at: give the time zone (e.g. +00:00)")
        checked.expiries[binding_key(row)] = expires
    return problems


def _cycle_problems(policy: dict[str, Any]) -> list[str]:
    parents = dict(Department.objects.values_list("slug", "parent__slug"))
    parents.update({d["slug"]: d.get("parent") for d in policy["departments"]})
    problems = []
    for start in sorted(d["slug"] for d in policy["departments"]):
        seen, slug = {start}, parents.get(start)
        while slug is not None:
            if slug in seen:
                problems.append(f"department {start}: its parents form a cycle")
                break
            seen.add(slug)
            slug = parents.get(slug)
    return problems


def policy_check(policy: Any) -> Checked:
    """The file, checked whole; ``PolicyFileInvalid`` lists every problem found."""
    problems = _schema_problems(policy)
    if problems:
        raise PolicyFileInvalid(problems)
    checked = Checked(policy=policy)
    problems += _duplicates("role", [r["slug"] for r in policy["roles"]])
    problems += _duplicates("department", [d["slug"] for d in policy["departments"]])
    problems += _duplicates("binding", [binding_key(b) for b in policy["bindings"]])
    problems += _duplicates("grant", [grant_key(g) for g in policy["grants"]])
    problems += _reference_problems(policy, checked)
    problems += _binding_problems(policy, checked)
    problems += _cycle_problems(policy)
    if problems:
        raise PolicyFileInvalid(problems)
    return checked


# --- import -----------------------------------------------------------------------------------------


def policy_import(*, policy: Any, prune: bool = False, dry_run: bool = False, actor: Any = None) -> list[str]:
    """Apply the policy file; the changes made (or, with ``dry_run``, that would be made), one a line."""
    checked = policy_check(policy)
    with acting_as(actor), transaction.atomic():
        changes = _Importer(checked).apply(prune=prune)
        if dry_run:
            transaction.set_rollback(True)
    return changes


def _binding_label(key: BindingKey) -> str:
    role, user, department = key
    return f"binding {role} → " + (f"user:{user}" if user else f"department:{department}")


def _grant_label(key: GrantKey) -> str:
    role, action, app = key
    return f"grant {role}: {action} on {app or 'every app'}"


class _Importer:
    """Applies a checked file, section by section, recording each change as a line."""

    def __init__(self, checked: Checked) -> None:
        self.checked = checked
        self.policy = checked.policy
        self.changes: list[str] = []
        self.roles: dict[str, Role] = {}
        self.departments: dict[str, Department] = {}

    def apply(self, *, prune: bool) -> list[str]:
        self._roles()
        self._departments()
        self._bindings(prune)
        self._grants(prune)
        if prune:
            for role in Role.objects.exclude(slug__in=self.roles):
                self._delete(f"role {role.slug}", role)
        return self.changes

    def _save(self, label: str, instance: Any, values: dict[str, Any]) -> Any:
        """Create ``instance`` (no pk yet) or save the ``values`` that differ from its own."""
        if instance.pk is None:
            for name, value in values.items():
                setattr(instance, name, value)
            instance.save()
            self.changes.append(f"create {label}")
            return instance
        changed = [name for name, value in values.items() if _current(instance, name) != _wanted(value)]
        for name in changed:
            setattr(instance, name, values[name])
        if changed:
            instance.save(update_fields=changed)
            self.changes.append(f"update {label}: {', '.join(changed)}")
        return instance

    def _delete(self, label: str, instance: Any) -> None:
        instance.delete()
        self.changes.append(f"delete {label}")

    def _roles(self) -> None:
        existing = {role.slug: role for role in Role.objects.all()}
        for row in self.policy["roles"]:
            role = existing.get(row["slug"]) or Role(slug=row["slug"])
            values = {"name": row["name"], "description": row.get("description", "")}
            self.roles[row["slug"]] = self._save(f"role {row['slug']}", role, values)

    def _departments(self) -> None:
        self.departments = {d.slug: d for d in Department.objects.all()}
        for row in _parents_first(self.policy["departments"]):
            department = self.departments.get(row["slug"]) or Department(slug=row["slug"])
            parent = self.departments[row["parent"]] if row.get("parent") else None
            label = f"department {row['slug']}"
            self.departments[row["slug"]] = self._save(
                label, department, {"name": row["name"], "parent": parent}
            )
            self._members(label, self.departments[row["slug"]], row.get("members", []))

    def _members(self, label: str, department: Department, usernames: list[str]) -> None:
        wanted = {self.checked.users[name].pk for name in usernames}
        if set(department.members.values_list("pk", flat=True)) != wanted:
            department.members.set(wanted)
            self.changes.append(f"update {label}: members")

    def _bindings(self, prune: bool) -> None:
        existing: dict[BindingKey, list[RoleBinding]] = {}
        for binding in RoleBinding.objects.select_related("role", "user", "department").order_by("id"):
            key = binding_key(_binding_row(binding))
            existing.setdefault(key, []).append(binding)
        for row in self.policy["bindings"]:
            key = binding_key(row)
            found = existing.pop(key, [])
            binding = found[0] if found else self._new_binding(key)
            values = {
                "include_descendants": row.get("include_descendants", False),
                "expires_at": self.checked.expiries[key],
            }
            self._save(_binding_label(key), binding, values)
            existing.setdefault(key, []).extend(found[1:])  # a second binding of the same role and subject
        for key, leftovers in sorted(existing.items(), key=lambda item: str(item[0])):
            for binding in leftovers if prune else []:
                self._delete(_binding_label(key), binding)

    def _new_binding(self, key: BindingKey) -> RoleBinding:
        role, user, department = key
        return RoleBinding(
            role=self.roles[role],
            user=self.checked.users[user] if user else None,
            department=self.departments[department] if department else None,
            created_by=_actor_or_none(),
        )

    def _grants(self, prune: bool) -> None:
        existing: dict[GrantKey, list[AppGrant]] = {}
        for grant in AppGrant.objects.select_related("role", "app").order_by("id"):
            key = (grant.role.slug, grant.action, grant.app.slug if grant.app else None)
            existing.setdefault(key, []).append(grant)
        for row in self.policy["grants"]:
            key = grant_key(row)
            if existing.pop(key, None) is None:
                role, action, app = key
                grant = AppGrant(role=self.roles[role], action=action, created_by=_actor_or_none())
                self._save(_grant_label(key), grant, {"app": self.checked.apps[app] if app else None})
        for key, leftovers in sorted(existing.items(), key=lambda item: str(item[0])):
            for grant in leftovers if prune else []:
                self._delete(_grant_label(key), grant)


def _current(instance: Any, name: str) -> Any:
    return getattr(instance, instance._meta.get_field(name).attname)


def _wanted(value: Any) -> Any:
    return getattr(value, "pk", value)


def _actor_or_none() -> Any:
    return current_actor()


def _parents_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The file's departments, each after its parent when that is in the file too (no cycles: checked)."""
    in_file = {row["slug"] for row in rows}
    placed: set[str] = set()
    ordered: list[dict[str, Any]] = []
    pending = sorted(rows, key=lambda row: row["slug"])
    while pending:
        ready = [r for r in pending if r.get("parent") not in in_file or r["parent"] in placed]
        ordered += ready
        placed |= {row["slug"] for row in ready}
        pending = [row for row in pending if row["slug"] not in placed]
    return ordered
