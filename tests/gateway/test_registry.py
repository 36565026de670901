"""The plugin registry: built-in and entry-point plugins, the PLUGINS_ENABLED whitelist (a plugin not named is
never imported), broken plugins reported with the reason, ``manage.py plugins``, and apps declaring only
enabled plugins."""

from __future__ import annotations

import json
import sys
import textwrap
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from agents.plugins import registry
from tests.factories import AppFactory
from tests.gateway import plugins as test_plugins


def by_name() -> dict[str, registry.Installed]:
    return {row.name: row for row in registry.installed()}


def test_only_whitelisted_plugins_load(enabled):
    enabled("echo", "crash")
    assert set(registry.plugins()) == {"echo", "crash"}
    rows = by_name()
    assert rows["refuse"].status == registry.Status.DISABLED
    assert rows["refuse"].reason == "not in PLUGINS_ENABLED"
    assert rows["refuse"].plugin is None
    assert registry.get("refuse") is None


def test_a_plugin_not_whitelisted_is_never_imported(enabled):
    test_plugins.IMPORTED.clear()
    enabled("echo")
    registry.installed()
    assert test_plugins.IMPORTED == []
    enabled("echo", "lazy")
    assert registry.get("lazy").name == "lazy"
    assert test_plugins.IMPORTED == ["lazy"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bad_schema", "bad schema"),
        ("not_a_plugin", "not a Plugin: dict"),
        ("wrong_name", "its name is 'another_name'"),
        ("missing_module", "import error: ModuleNotFoundError"),
        ("never_installed", "named in PLUGINS_ENABLED, not installed"),
    ],
)
def test_a_broken_plugin_is_reported_and_not_offered(enabled, name, reason):
    enabled("echo", name)
    row = by_name()[name]
    assert row.status == registry.Status.BROKEN
    assert reason in row.reason
    assert registry.get(name) is None
    assert registry.get("echo") is not None  # one broken plugin stops no other


@pytest.fixture
def distribution(tmp_path, monkeypatch):
    """A distribution installed on sys.path for this test, declaring plugins in the entry-point group."""

    def install(entry_points: dict[str, str], module_source: str) -> None:
        (tmp_path / "acme_plugins.py").write_text(textwrap.dedent(module_source))
        info = tmp_path / "acme_plugins-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-plugins\nVersion: 1.0\n")
        lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{lines}\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, "acme_plugins", raising=False)

    return install


ACME = """
    from agents.plugins.base import Plugin

    LOADED = []

    def _weather(arguments, call):
        return {"sky": "clear"}

    WEATHER = Plugin("weather", "The sky.", {"type": "object"}, {"type": "object"}, _weather)
    ECHO = Plugin("echo", "An impostor.", {"type": "object"}, {"type": "object"}, _weather)
    LOADED.append("acme")
"""


def test_entry_point_plugins_are_found_and_loaded_when_enabled(enabled, distribution):
    distribution({"weather": "acme_plugins:WEATHER", "echo": "acme_plugins:ECHO"}, ACME)
    enabled("weather", "echo")
    rows = by_name()
    assert rows["weather"].source == "entry point (acme-plugins)"
    assert rows["weather"].status == registry.Status.LOADED
    assert registry.get("weather").function({}, None) == {"sky": "clear"}
    # A distribution cannot take a built-in's name over.
    assert rows["echo"].source == "built-in"
    assert registry.get("echo").description.startswith("Answers its arguments back")


def test_entry_point_plugins_not_enabled_are_listed_and_not_imported(enabled, distribution):
    distribution({"weather": "acme_plugins:WEATHER"}, ACME)
    enabled("echo")
    assert by_name()["weather"].status == registry.Status.DISABLED
    assert "acme_plugins" not in sys.modules


@pytest.mark.django_db
def test_manage_py_plugins_lists_them_and_fails_on_a_broken_one(enabled):
    AppFactory(slug="reporter", plugins=[])
    enabled("echo", "crash")
    from agents.models import App

    App.objects.filter(slug="reporter").update(plugins=["echo"])
    out = StringIO()
    call_command("plugins", stdout=out)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines()[1:]}
    assert lines["echo"].split()[:4] == ["echo", "loaded", "built-in", "reporter"]
    assert "not in PLUGINS_ENABLED" in lines["refuse"]
    out = StringIO()
    call_command("plugins", "--json", stdout=out)
    listed = {row["name"]: row for row in json.loads(out.getvalue())}
    assert listed["crash"]["limits"]["timeout_s"] == 10.0
    assert listed["echo"]["apps"] == ["reporter"]
    enabled("echo", "bad_schema")
    with pytest.raises(CommandError, match="enabled but not loaded: bad_schema") as failure:
        call_command("plugins", stdout=StringIO())
    assert failure.value.returncode == 1


@pytest.mark.django_db
def test_an_app_may_declare_only_enabled_plugins(enabled):
    enabled("echo", "crash")
    app = AppFactory.build(slug="declaring", plugins=["echo", "refuse"])
    with pytest.raises(ValidationError) as refused:
        app.full_clean(exclude=["executor", "icon"])
    message = str(refused.value.message_dict["plugins"])
    assert "Not an enabled plugin: refuse" in message
    assert "Enabled: crash, echo" in message
    app.plugins = ["echo", "crash"]
    app.full_clean(exclude=["executor", "icon"])


def test_a_broken_enabled_plugin_is_a_system_check_warning(enabled):
    from controlplane.checks import check_plugins

    enabled("echo")
    assert check_plugins() == []
    enabled("echo", "bad_schema")
    (warning,) = check_plugins()
    assert warning.id == "controlplane.W010"
    assert "'bad_schema'" in warning.msg
