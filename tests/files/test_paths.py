"""Paths refused before the disk is touched, and the walk that never follows a symlink."""

from __future__ import annotations

import os

import pytest

from files import paths


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("a\x00b", "control_character"),
        ("a\nb", "control_character"),
        ("a\rb", "control_character"),
        ("a\x85b", "control_character"),  # C1 NEL
        ("a\x7fb", "control_character"),
        ("..\\secret", "backslash"),
        ("reports\\..\\secret", "backslash"),
        ("/etc/passwd", "absolute"),
        ("//etc/passwd", "absolute"),
        ("C:/Windows/win.ini", "drive_letter"),
        ("c:secret", "drive_letter"),
        ("..", "dot_component"),
        ("../outside.txt", "dot_component"),
        ("reports/../secret/keys.txt", "dot_component"),
        ("reports/./q1.csv", "dot_component"),
        ("reports/", "empty_component"),
        ("reports//q1.csv", "empty_component"),
        ("a" * 256, "name_too_long"),
        ("/".join(["a" * 200] * 21), "too_long"),
        ("\udcff", "not_utf8"),
    ],
)
def test_refused_before_the_disk(raw, reason):
    with pytest.raises(paths.InvalidPath) as refused:
        paths.parse(raw)
    assert refused.value.reason == reason
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "raw", ["reports/q1.csv", "%2e%2e", "..a", "a..", "...", "名前/ファイル.txt", "ab:c"]
)
def test_ordinary_names_pass(raw):
    assert paths.parse(raw) == tuple(raw.split("/"))


def test_the_root_itself_only_where_allowed():
    assert paths.parse("", allow_empty=True) == ()


def test_a_sibling_root_is_not_inside():
    assert paths.is_inside("/srv/data/x", "/srv/data")
    assert paths.is_inside("/srv/data", "/srv/data")
    assert not paths.is_inside("/srv/data2/x", "/srv/data")
    assert not paths.is_inside("/srv/data2", "/srv/data")


def test_a_symlinked_directory_on_the_way_is_refused(tmp_path):
    root = tmp_path / "root"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "f.txt").write_text("x")
    root.mkdir()
    os.symlink(tmp_path / "elsewhere", root / "link")
    with pytest.raises(paths.EntryNotFound) as refused:
        paths.open_regular_file(str(root), ("link", "f.txt"))
    assert refused.value.reason == "symlink"


def test_a_root_reached_through_a_symlink_still_holds(tmp_path):
    """The root's own path may be a symlink (configured by an admin); what is under it is checked against
    its real path."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "f.txt").write_text("inside")
    os.symlink(real, tmp_path / "alias")
    with paths.open_regular_file(str(tmp_path / "alias"), ("f.txt",)) as opened:
        assert os.pread(opened.fd, 100, 0) == b"inside"
        assert opened.resolved == str(real / "f.txt")


def test_a_directory_moved_out_of_the_root_is_not_served(tmp_path):
    """The open descriptor's own path is checked: a directory moved away from the root while it is held
    open is outside."""
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f.txt").write_text("x")
    opened = paths.open_directory(str(root), ("d",))
    opened.close()
    os.rename(root / "d", tmp_path / "moved")
    fd = os.open(tmp_path / "moved", os.O_RDONLY | os.O_DIRECTORY)
    with pytest.raises(paths.EntryNotFound) as refused:
        paths._checked(str(root), fd)
    assert refused.value.reason == "outside_root"
