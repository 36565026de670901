"""``manage.py policy export`` / ``policy import``: a stable file, a round trip into an empty database,
whole-file checks before anything is applied, --prune, --dry-run and the audit actor."""

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.core.management import CommandError, call_command

from agents.models import Action, AppGrant
from rbac.models import Department, Role, RoleBinding
from tests.factories import (
    AppFactory,
    AppGrantFactory,
    DepartmentFactory,
    RoleBindingFactory,
    RoleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

EXPIRY = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def export() -> str:
    out = StringIO()
    call_command("policy", "export", stdout=out)
    return out.getvalue()


def import_file(tmp_path, policy, *args) -> str:
    path = tmp_path / "policy.json"
    path.write_text(policy if isinstance(policy, str) else json.dumps(policy))
    out = StringIO()
    call_command("policy", "import", str(path), *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def policy_rows():
    """A small policy with every kind of row: a tree, members, user and department bindings, an expiry,
    grants on one app and on every app."""
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    app = AppFactory(slug="reports")
    acme = DepartmentFactory(slug="acme", name="Acme")
    research = DepartmentFactory(slug="research", name="Research", parent=acme, members=[bob, alice])
    readers = RoleFactory(slug="readers", name="Readers", description="Read reports")
    admins = RoleFactory(slug="admins", name="Admins")
    RoleBindingFactory(role=readers, department=acme, include_descendants=True)
    RoleBindingFactory(role=admins, user=alice, expires_at=EXPIRY)
    RoleBindingFactory(role=readers, department=research)
    AppGrantFactory(role=readers, action=Action.USE, app=app)
    AppGrantFactory(role=admins, action=Action.CONFIGURE, app=None)


def empty_the_policy() -> None:
    RoleBinding.objects.all().delete()
    AppGrant.objects.all().delete()
    Role.objects.all().delete()
    Department.objects.update(parent=None)
    Department.objects.all().delete()


def test_the_export_is_sorted_indented_json(policy_rows):
    text = export()
    policy = json.loads(text)
    assert text.startswith('{\n  "bindings"')
    assert [r["slug"] for r in policy["roles"]] == ["admins", "readers"]
    research = next(d for d in policy["departments"] if d["slug"] == "research")
    assert research == {"slug": "research", "name": "Research", "parent": "acme", "members": ["alice", "bob"]}
    assert {"role": "admins", "action": "app.configure", "app": None} in policy["grants"]
    assert {
        "role": "admins",
        "user": "alice",
        "department": None,
        "include_descendants": False,
        "expires_at": "2030-01-02T03:04:05.678000+00:00",
    } in policy["bindings"]
    assert export() == text


def test_export_then_import_into_an_empty_policy_gives_the_same_export(policy_rows, tmp_path):
    before = export()
    empty_the_policy()
    assert json.loads(export())["roles"] == []
    import_file(tmp_path, before)
    assert export() == before


def test_importing_the_current_policy_changes_nothing(policy_rows, tmp_path):
    out = import_file(tmp_path, export(), "--prune")
    assert out.strip() == "0 changed"


def test_without_prune_nothing_is_deleted_and_with_it_what_is_missing_goes(policy_rows, tmp_path):
    policy = json.loads(export())
    policy["roles"] = [r for r in policy["roles"] if r["slug"] != "admins"]
    kept = ("readers", "acme")
    policy["bindings"] = [b for b in policy["bindings"] if (b["role"], b["department"]) == kept]
    policy["grants"] = [g for g in policy["grants"] if g["role"] == "readers"]
    import_file(tmp_path, policy)
    assert Role.objects.filter(slug="admins").exists()
    assert RoleBinding.objects.count() == 3
    out = import_file(tmp_path, policy, "--prune")
    assert set(Role.objects.values_list("slug", flat=True)) == {"readers"}
    assert RoleBinding.objects.count() == 1
    assert AppGrant.objects.count() == 1
    assert "delete role admins" in out
    assert "delete binding readers → department:research" in out
    assert Department.objects.count() == 2  # departments are never pruned


def test_a_dry_run_prints_the_changes_and_applies_none(policy_rows, tmp_path):
    before = export()
    policy = json.loads(before)
    policy["roles"][0]["name"] = "Administrators"
    policy["departments"].append({"slug": "ml", "name": "ML", "parent": "research", "members": ["bob"]})
    entries = LogEntry.objects.count()
    out = import_file(tmp_path, policy, "--dry-run", "--prune")
    assert "update role admins: name" in out
    assert "create department ml" in out
    assert "dry run: nothing applied" in out
    assert export() == before
    assert LogEntry.objects.count() == entries


def test_an_import_updates_changed_rows_in_place(policy_rows, tmp_path):
    policy = json.loads(export())
    binding = next(b for b in policy["bindings"] if b["user"] == "alice")
    binding["expires_at"] = None
    research = next(d for d in policy["departments"] if d["slug"] == "research")
    research.update(parent=None, members=["bob"])
    out = import_file(tmp_path, policy)
    assert "update binding admins → user:alice: expires_at" in out
    assert "update department research: parent" in out
    assert "update department research: members" in out
    assert RoleBinding.objects.get(user__username="alice").expires_at is None
    assert list(Department.objects.get(slug="research").members.values_list("username", flat=True)) == ["bob"]


def test_unknown_users_and_apps_are_named_and_nothing_is_applied(policy_rows, tmp_path):
    before = export()
    policy = json.loads(before)
    policy["roles"].append({"slug": "new", "name": "New"})
    policy["departments"][0]["members"].append("ghost")
    policy["bindings"].append({"role": "new", "user": "phantom"})
    policy["grants"].append({"role": "new", "action": "app.use", "app": "nowhere"})
    with pytest.raises(CommandError) as failure:
        import_file(tmp_path, policy)
    message = str(failure.value)
    for name in ["unknown user: ghost", "unknown user: phantom", "unknown app: nowhere"]:
        assert name in message
    assert export() == before


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda p: p.pop("grants"), "'grants' is a required property"),
        (lambda p: p.update(version=2), "version"),
        (lambda p: p["roles"].append({"slug": "bad slug", "name": "X"}), "roles/3/slug"),
        (lambda p: p["grants"].append({"role": "admins", "action": "app.fly"}), "grants/2/action"),
        (lambda p: p["bindings"].append({"role": "admins"}), "name exactly one of user or department"),
        (lambda p: p["bindings"].append(dict(p["bindings"][0])), "binding listed twice"),
        (lambda p: p["bindings"].append({"role": "ghost", "user": "bob"}), "role not in the file: ghost"),
        (
            lambda p: p["bindings"].append({"role": "admins", "user": "bob", "expires_at": "soon"}),
            "not an ISO 8601",
        ),
        (lambda p: p["departments"][0].update(parent="research"), "cycle"),
        (lambda p: p["departments"][1].update(parent="void"), "unknown department: void"),
    ],
)
def test_a_file_failing_a_check_is_refused_whole(policy_rows, tmp_path, change, problem):
    before = export()
    policy = json.loads(before)
    policy["roles"].append({"slug": "extra", "name": "Extra"})  # would be created if anything were applied
    change(policy)
    with pytest.raises(CommandError, match="not applied") as failure:
        import_file(tmp_path, policy)
    assert problem in str(failure.value)
    assert not Role.objects.filter(slug="extra").exists()


def test_a_file_that_is_not_json_is_a_command_error(tmp_path, db):
    with pytest.raises(CommandError, match="not JSON"):
        import_file(tmp_path, "{nope")


def test_the_import_records_its_changes_with_the_actor(policy_rows, tmp_path):
    operator = UserFactory(username="operator")
    policy = json.loads(export())
    policy["roles"][0]["name"] = "Administrators"
    import_file(tmp_path, policy, "--actor", "operator")
    entry = LogEntry.objects.get_for_model(Role).latest("timestamp")
    assert entry.actor == operator
    assert entry.changes == {"name": ["Admins", "Administrators"]}


def test_an_unknown_actor_is_refused(policy_rows, tmp_path):
    with pytest.raises(CommandError, match="unknown user for --actor: nobody"):
        import_file(tmp_path, export(), "--actor", "nobody")
