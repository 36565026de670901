"""The demo data: created once, never duplicated, never overwriting what people changed."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from agents.models import App
from controlplane.demo import APPS, DEMO_USER_PASSWORD, PROJECTS, ROLES, seed_demo
from executor.agents.scripted import PLAYBOOKS
from rbac.models import Department
from rbac.services import DemoPasswordRefused
from tests.factories import AppFactory, UserFactory

User = get_user_model()


def counts() -> tuple[int, int, int, int]:
    members = sum(d.members.count() for d in Department.objects.all())
    return User.objects.count(), Department.objects.count(), App.objects.count(), members


def test_seeds_the_cast_departments_and_one_app_per_playbook(db, settings):
    settings.DEBUG = True
    report = seed_demo()
    admin = User.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.check_password("admin")
    for username, department in [("alice", "research"), ("bob", "support")]:
        user = User.objects.get(username=username)
        assert user.check_password(DEMO_USER_PASSWORD)
        assert not user.is_staff
        assert list(user.departments.values_list("slug", flat=True)) == [department]
    assert Department.objects.get(slug="research").parent == Department.objects.get(slug="acme")
    apps = {app.slug: app for app in App.objects.all()}
    assert set(apps) == {app.slug for app in APPS}
    assert {app.playbook for app in apps.values()} == set(PLAYBOOKS)  # one app per playbook at least
    for demo in APPS:
        app = apps[demo.slug]
        assert app.playbook == (demo.playbook or demo.slug)
        assert app.active_prompt.number == 1
        assert app.active_prompt.text == demo.system_prompt
        assert app.agent_kind == "scripted"
        assert app.enabled
        # No executor of its own: the default one (in-process in standalone, EXECUTOR_URL elsewhere).
        assert app.executor_id is None
        assert app.name
        assert app.description
    assert len(report.created) == 3 + 3 + len(APPS) + len(ROLES) + len(PROJECTS) + 1  # + the file root


def test_seeding_twice_creates_nothing_more(db, settings):
    settings.DEBUG = True
    seed_demo()
    before = counts()
    assert seed_demo().created == []
    assert counts() == before == (3, 3, len(APPS), 2)


def test_seeding_leaves_what_people_changed_alone(db, settings):
    settings.DEBUG = True
    UserFactory(username="alice", password="a-password-alice-chose")
    AppFactory(slug="demo", name="Our own demo", playbook="instant")
    research = Department.objects.create(slug="research", name="R&D")
    seed_demo()
    assert User.objects.get(username="alice").check_password("a-password-alice-chose")
    assert App.objects.get(slug="demo").name == "Our own demo"
    assert research.members.count() == 0
    assert Department.objects.get(slug="research").name == "R&D"
    assert App.objects.get(slug="flood").playbook == "flood"  # what was missing is still created


def test_demo_passwords_are_refused_with_debug_off_unless_allowed(db, settings):
    settings.DEBUG = False
    with pytest.raises(DemoPasswordRefused):
        seed_demo()
    assert counts() == (0, 0, 0, 0)
    seed_demo(allow_demo_passwords=True)
    assert User.objects.filter(username="admin", is_superuser=True).exists()


def test_the_command_seeds_once_and_says_so(db, settings, capsys):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "Created: user admin, user alice" in out
    assert "nothing changed" in out
    assert "alice / demo" in out
    assert counts() == (3, 3, len(APPS), 2)


def test_the_command_refuses_demo_passwords_with_debug_off(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--allow-demo-passwords"):
        call_command("seed_demo")
    call_command("seed_demo", "--allow-demo-passwords")
    assert counts()[0] == 3


def test_the_demo_file_root_lets_research_read_reports_not_secret(db, settings, tmp_path, api_as):
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    seed_demo()
    alice, bob = User.objects.get(username="alice"), User.objects.get(username="bob")
    assert [root["name"] for root in api_as(alice).get("/api/files/roots").json()["roots"]] == ["demo"]
    listed = api_as(alice).get("/api/files/demo/list", {"path": ""}).json()["entries"]
    assert [entry["name"] for entry in listed] == ["reports", "workspace"]
    chart = api_as(alice).get("/api/files/demo/download", {"path": "reports/chart.png"})
    assert chart.status_code == 200
    assert b"".join(chart.streaming_content).startswith(b"\x89PNG")
    assert api_as(alice).get("/api/files/demo/download", {"path": "secret/salaries.csv"}).status_code == 404
    assert api_as(bob).get("/api/files/roots").json() == {"roots": []}
    (tmp_path / "demo-files" / "reports" / "summary.md").write_text("changed by someone")
    assert seed_demo().created == []
    assert (tmp_path / "demo-files" / "reports" / "summary.md").read_text() == "changed by someone"
