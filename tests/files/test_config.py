"""Roots from settings, the checks that flag a root that cannot be served, and `manage.py file_roots`."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from controlplane import checks, env
from files.models import FileRoot
from tests.factories import FileRootFactory


def test_named_paths_reader(monkeypatch):
    monkeypatch.setenv("FILE_ROOTS", "reports=/srv/reports, ws=/srv/workspaces")
    assert env.named_paths("FILE_ROOTS") == {"reports": "/srv/reports", "ws": "/srv/workspaces"}
    for bad in ["reports", "reports=relative", "a b=/x", "x=/a,x=/b"]:
        monkeypatch.setenv("FILE_ROOTS", bad)
        with pytest.raises(ImproperlyConfigured, match="FILE_ROOTS"):
            env.named_paths("FILE_ROOTS")


def test_a_missing_settings_root_is_flagged(settings, tmp_path):
    settings.FILE_ROOTS = {"ok": str(tmp_path), "gone": str(tmp_path / "gone")}
    messages = checks.check_file_roots()
    assert [(m.id, "gone" in m.msg) for m in messages] == [("files.W001", True)]


def test_a_missing_database_root_is_flagged_when_the_database_is_checked(db, settings, tmp_path):
    settings.FILE_ROOTS = {}
    FileRootFactory(name="vanished", path=str(tmp_path / "vanished"))
    assert checks.check_file_roots() == []
    assert [m.id for m in checks.check_file_roots(databases=["default"])] == ["files.W001"]


def test_atomic_requests_would_roll_back_the_audit(settings, monkeypatch):
    monkeypatch.setitem(settings.DATABASES["default"], "ATOMIC_REQUESTS", True)
    settings.FILE_ROOTS = {}
    assert [m.id for m in checks.check_file_roots()] == ["files.E002"]


def test_sync_creates_updates_and_disables(db, settings, tmp_path, capsys):
    (tmp_path / "a").mkdir()
    settings.FILE_ROOTS = {"a": str(tmp_path / "a"), "b": str(tmp_path / "missing")}
    call_command("file_roots", "--sync", "--json")
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)["roots"]}
    assert listed["a"]["problem"] is None
    assert listed["a"]["from_settings"]
    assert listed["b"]["problem"] == "No such directory on this machine."
    settings.FILE_ROOTS = {"a": str(tmp_path)}
    call_command("file_roots", "--sync")
    assert "synced 1 root(s)" in capsys.readouterr().out
    assert FileRoot.objects.get(name="a").path == str(tmp_path)
    assert FileRoot.objects.get(name="b").enabled is False


def test_the_admins_validation_refuses_a_missing_path(db, tmp_path):
    from django.core.exceptions import ValidationError

    for path in [str(tmp_path / "nope"), "relative/path", ""]:
        with pytest.raises(ValidationError) as refused:
            FileRoot(name="x", path=path).full_clean()
        assert "path" in refused.value.message_dict
    FileRoot(name="x", path=str(tmp_path)).full_clean()


def test_an_acl_prefix_is_normalised_and_checked(db, root):
    from django.core.exceptions import ValidationError

    from files.models import FileACL
    from tests.factories import RoleFactory

    acl = FileACL(root=root, path_prefix="reports/2026", role=RoleFactory())
    acl.full_clean()
    for bad in ["../x", "/abs", "a//b", "a\\b"]:
        with pytest.raises(ValidationError):
            FileACL(root=root, path_prefix=bad, role=acl.role).full_clean()
